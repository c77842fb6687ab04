# Two entry points, each setting up what it needs first (scripts/setup.sh, idempotent).
.PHONY: setup demo test down cluster cluster-down

setup:
	@bash scripts/setup.sh

# steward's main job on the embedded default: local Temporal (+ Web UI), worker, throwaway VPS; then provision,
# harden and deploy the OpenClaw stack onto it, verified from the outside; the memory check proves mem0 with the
# stand-in embedder (hashed words, not a model: the throwaway VPS has no embedding provider); a drift plan finds the
# host converged; the summary says how to reach the agent, get its token, and see each run in the UI.
demo: setup
	npx steward dev up
	npx steward provision
	npx steward harden
	npx steward deploy
	npx steward dev embedder
	npx steward memory check
	npx steward drift
	npx steward dev summary

# Type check, lint, format check, unit, workflow and integration tests.
test: setup
	npm test

down:
	npx steward dev down

# docker-compose.dev.yml: Temporal on PostgreSQL (TLS, client certificates) + Web UI + a VPS, all built here.
cluster: setup
	@bash scripts/cluster.sh up

cluster-down:
	@bash scripts/cluster.sh down
