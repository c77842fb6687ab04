/** Worker Deployment names as `steward worker` accepts them; no Temporal module, so the CLI checks flags fast. */

/** A deployment name: no '.', which separates it from the build id in a version's canonical name `<name>.<build id>`. */
export const DEPLOYMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/** A build id, e.g. a release tag or commit, or the default `wf-<digest of the workflow code>`. */
export const BUILD_ID = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
