package policy

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The policy file is walked as YAML nodes rather than decoded into structs:
// that is how every problem is reported at once with its rule number, and
// how unknown and repeated fields are refused everywhere (yaml.Node.Decode
// has no KnownFields).

// fields returns a mapping's values by key. It reports a node that is not a
// mapping (returning nil), and keys that are not strings, repeated or not
// in known.
func fields(n *yaml.Node, known []string, at string, errs *[]error) map[string]*yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		*errs = append(*errs, fmt.Errorf("%swant a mapping of %s, got %s", at, strings.Join(known, ", "), kind(n)))
		return nil
	}
	out := make(map[string]*yaml.Node, len(known))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		switch {
		case !isString(k):
			*errs = append(*errs, fmt.Errorf("%swant field names such as %s, got %s", at, known[0], kind(k)))
		case !slices.Contains(known, k.Value):
			*errs = append(*errs, fmt.Errorf("%sunknown field %q; want %s", at, k.Value, strings.Join(known, ", ")))
		case out[k.Value] != nil:
			*errs = append(*errs, fmt.Errorf("%s%s is given twice", at, k.Value))
		default:
			out[k.Value] = v
		}
	}
	return out
}

// stringList returns a sequence of strings; for anything else it reports
// the problem and returns nil. An empty sequence gives an empty, non-nil
// slice.
func stringList(n *yaml.Node, at, example string, errs *[]error) []string {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		*errs = append(*errs, fmt.Errorf("%swant a list such as %s, got %s", at, example, kind(n)))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = resolve(item)
		if !isString(item) {
			*errs = append(*errs, fmt.Errorf("%swant a list of strings such as %s, got %s in it", at, example, kind(item)))
			return nil
		}
		out = append(out, item.Value)
	}
	return out
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

func isString(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str"
}

// kind names what a node holds, for error messages.
func kind(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.ShortTag() == "!!null":
		return "nothing"
	case n.ShortTag() == "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case n.ShortTag() == "!!int" || n.ShortTag() == "!!float":
		return "the number " + n.Value
	case n.ShortTag() == "!!bool":
		return "the boolean " + n.Value
	}
	return "something else"
}
