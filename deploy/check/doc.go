// Package check holds tests, and nothing else, for authproxy's deployment files: the Dockerfile, the Kubernetes
// manifests in deploy/kubernetes and the compose files in deploy/compose. It is a module of its own so that
// Kubernetes' and Compose's libraries stay out of authproxy's dependencies.
//
//	cd deploy/check && go test ./...     (or: make deploy-check)
package check
