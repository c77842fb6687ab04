/**
 * Deploy: images onto the host (streamed from the operator's engine, skipping those it has by ID), secret files,
 * the rendered compose project and config (validated by OpenClaw before anything goes live), then health,
 * verification, and commit or rollback. Each step is observe → diff → apply → verify and reports what it changed.
 */
import Docker from 'dockerode';
import type { Change, ControlResult, Finding } from '../../model/report';
import { GATEWAY_SERVICE, PROXY_SERVICE, secretDeliveries, stackImages } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import {
  activityStep,
  heartbeat,
  reportProgress,
  targetOf,
  type ActivityDeps,
  type StepInput,
  type StepResult,
} from '../context';
import { planImages, shortId, transferImages, type TransferProgress } from './images';
import { ensureSecrets, rememberExternalSecrets, type KeepFingerprints } from './secrets';
import type { SecretStore } from '../secrets-store';
import { redactedResult } from '../redact';
import { plannedReloads, reloadLive } from './live-config';
import { beginRelease, commitRelease, releasePending, restorePrevious } from './release';
import {
  composeUp,
  containerChanges,
  hostImages,
  observeContainers,
  renderStack,
  validateConfig,
  waitHealthy,
} from './stack';
import { verifyStack } from './verify';
import { digest } from '../resources/files';
import { converge, diffAll, observe } from '../resources/resource';
import { resourcesOf } from '../catalogue';

export interface ImageStepResult extends StepResult {
  /** Images already on the host by ID, and the bytes not sent because of it. */
  readonly skipped: { image: string; bytes: number }[];
  readonly sentBytes: number;
}

export interface VerifyStepResult extends StepResult {
  readonly controls: ControlResult[];
}

export interface DeployDeps extends ActivityDeps {
  /** The operator's Docker engine, source of streamed images. Default: the local socket or DOCKER_HOST. */
  readonly localDocker?: Docker;
  /** Opens the secret version store, where generated values' fingerprints are kept: the one handle every activity shares. */
  readonly store: () => Promise<SecretStore>;
}

const SERVICES = [GATEWAY_SERVICE, PROXY_SERVICE];

const PHASES: Record<TransferProgress['phase'], string> = {
  saving: 'saving images into the local cache',
  sending: 'sending image layers',
  loading: 'loading images on the host',
};

/**
 * A transfer's callbacks as step progress: per phase, layer bytes read of all, the rate so far and the time left. The
 * step's own timer keeps heartbeating in between.
 */
function imageProgress(): (bytes: number, detail: TransferProgress) => void {
  let phase: TransferProgress['phase'] | undefined;
  let since = 0;
  let last = 0;
  return (_bytes, d) => {
    const now = Date.now();
    // Called per chunk sent: recorded once a second at most (each heartbeat's details are encrypted).
    if (d.phase === phase && now - last < 1000) return;
    if (d.phase !== phase) [phase, since] = [d.phase, now];
    last = now;
    const seconds = (now - since) / 1000;
    if (d.phase !== 'sending' || d.read === undefined || !d.total) {
      reportProgress({ doing: PHASES[d.phase] });
      return;
    }
    const rate = seconds >= 1 ? d.read / seconds : undefined;
    reportProgress({
      doing: PHASES.sending,
      done: d.read,
      total: d.total,
      ...(rate ? { rate, secondsLeft: Math.max(0, d.total - d.read) / rate } : {}),
    });
  };
}

/** Secrets the gateway reads as files under /run/secrets. */
function fileSecrets(spec: Spec): string[] {
  return secretDeliveries(spec).flatMap((d) => (d.kind === 'file' ? [d.secret] : []));
}

export function createDeployActivities({ pool, localDocker, store }: DeployDeps) {
  const session = (input: StepInput) => pool.get(targetOf(input));
  const local = () => localDocker ?? new Docker();

  return {
    /**
     * Makes the host hold the pinned images with the operator's image IDs, sending only what it lacks: images it has
     * by ID are skipped, and of the others only the layers its engine lacks travel, continuing what an interrupted
     * attempt staged. Heartbeats as bytes go out, while the local cache saves an image and while the host loads.
     */
    async transferStackImages(input: StepInput): Promise<ImageStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const images = stackImages(input.spec);
        const plan = input.mode === 'plan' ? await planImages(s, local(), images) : undefined;
        const r = plan
          ? { changes: plan.changes, skipped: plan.skipped, transferred: [] }
          : await transferImages(s, local(), images, {
              compress: input.spec.stack.compressImages,
              onProgress: imageProgress(),
            });
        const sent = new Map(r.transferred.map((t) => [`image:${t.image}`, t]));
        const changes = r.changes.map((c) => {
          const t = sent.get(c.resource);
          if (!t) return c;
          const figures = {
            bytesSent: t.bytes,
            seconds: +(t.ms / 1000).toFixed(1),
            layersSent: t.layersSent,
            layersReused: t.layersReused,
            ...(t.resumedBytes > 0 ? { resumedBytes: t.resumedBytes } : {}),
          };
          return { ...c, after: { ...(c.after as object), ...figures } };
        });
        const findings: Finding[] = r.skipped.map((k) => ({
          id: 'image.present',
          severity: 'info',
          message: `${k.image} already on the host (${shortId(k.id)}); ${(k.bytes / 1e6).toFixed(0)} MB not sent`,
          resource: `image:${k.image}`,
        }));
        return {
          changes,
          findings,
          skipped: r.skipped.map(({ image, bytes }) => ({ image, bytes })),
          sentBytes: r.transferred.reduce((n, t) => n + t.bytes, 0),
        };
      });
    },

    /** Secret files for the gateway (0600, its uid): generated on the host, or external from the worker. */
    async ensureStackSecrets(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const changes = await converge(s, resourcesOf('deploy.layout', input), input.mode);
        const findings: Finding[] = [];
        // Generated values' fingerprints go to the version store, so a worker that never saw them still redacts them.
        const keep: KeepFingerprints = async (secret, shape, seen) => {
          try {
            await (await store()).keepFingerprints(input.host, secret, shape, [seen]);
          } catch (err) {
            findings.push({
              id: 'secret.fingerprints',
              severity: 'low',
              resource: `secret:${secret}`,
              message: `not kept for other workers' redaction: ${(err as Error).message}`,
            });
          }
        };
        changes.push(...(await ensureSecrets(s, input.spec, input.mode, keep)));
        return { changes, findings };
      });
    },

    /**
     * Validates the rendered openclaw.json with the new image's own `openclaw config validate` when it differs from
     * the live one or the gateway's image changes. Changes nothing live.
     * @throws ConfigRejected naming the fields OpenClaw rejects.
     */
    async prepareStack(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const rendered = renderStack(input.spec);
        const configPath = rendered.layout.openclawJson;
        const resource = resourcesOf('deploy.files', input).find((r) => r.id === `file:${configPath}`)!;
        const [[observed], live, [image]] = await Promise.all([
          observe(s, [resource]),
          observeContainers(s),
          hostImages(s, [input.spec.stack.image]),
        ]);
        const pending = resource.diff(observed as Parameters<typeof resource.diff>[0]);
        // A new gateway image is checked against the config too: it may reject what the old one took. Its run also
        // reads the new image's files once before the gateway's own start, which then finds them in memory.
        const newImage = image!.id !== '' && live.get(GATEWAY_SERVICE)?.image !== image!.id;
        const findings: Finding[] = [];
        // A plan validates too when asked (an upgrade's) and the image is already on the host: it changes nothing live.
        const validate =
          input.mode === 'apply' || ((input as { validate?: boolean }).validate === true && image!.id !== '');
        if ((pending.length > 0 || newImage) && validate) {
          await validateConfig(s, input.spec, rendered, fileSecrets(input.spec));
          findings.push({
            id: 'openclaw.config-valid',
            severity: 'info',
            message: `openclaw config validate: valid${newImage ? ` with ${input.spec.stack.image}` : ''}`,
            resource: `file:${configPath}`,
          });
        }
        return { changes: [], findings };
      });
    },

    /**
     * Writes the rendered files and brings the containers to them (`docker-compose up -d` recreates only what
     * changed), keeping the live release as `previous` first; then waits until every container is healthy.
     * @throws StackUnhealthy when the new release does not turn healthy (the workflow then rolls back).
     */
    async applyStack(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const spec = input.spec;
        const rendered = renderStack(spec);
        const files = resourcesOf('deploy.files', input);
        const [observedFiles, live, ids, resuming] = await Promise.all([
          observe(s, files),
          observeContainers(s),
          hostImages(s, stackImages(spec)),
          releasePending(s, rendered.layout),
        ]);
        const fileChanges = diffAll(files, observedFiles).flat();
        const containers = containerChanges(spec, rendered, live, { gateway: ids[0]!, proxy: ids[1]! });
        // A file whose bytes change is taken live; so are both after an attempt that wrote them and did not finish
        // (the release is still pending): confirming a config the gateway already took, or reloading Caddy again,
        // costs nothing.
        const contentChanged = (path: string) =>
          fileChanges.some(
            (c) => c.resource === `file:${path}` && c.after !== undefined && 'sha256' in (c.after as object),
          );
        const rewritten = {
          openclawJson: resuming || contentChanged(rendered.layout.openclawJson),
          caddyfile: resuming || contentChanged(rendered.layout.caddyfile),
        };
        // A container compose recreates reads its files at start; a running one takes them live.
        const recreated = new Set(containers.map((c) => c.resource.slice('container:'.length)));
        const changes: Change[] = [...fileChanges, ...containers];
        if (input.mode === 'plan' || (changes.length === 0 && !resuming)) {
          return { changes: [...changes, ...plannedReloads(rewritten, recreated)], findings: [] };
        }

        await beginRelease(s, rendered.layout, live);
        await converge(s, files, 'apply');
        await composeUp(s, rendered.layout);
        const openclawJson = rendered.files.find((f) => f.path === rendered.layout.openclawJson)!;
        const reloads = await reloadLive(
          s,
          spec,
          rendered.layout,
          digest(openclawJson.content),
          rewritten,
          live,
          heartbeat,
        );
        await waitHealthy(s, SERVICES, spec.stack.healthTimeoutSeconds, heartbeat);
        return { changes: [...changes, ...reloads], findings: [] };
      });
    },

    /**
     * The deploy verification controls; a failing control makes the workflow roll back. What the release did not
     * change (a provider's outage, a model that skipped a tool call) is a finding here, not a failure.
     */
    async verifyStack(input: StepInput): Promise<VerifyStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const containers = await observeContainers(s);
        const { controls, findings } = await verifyStack(s, input.spec, containers, heartbeat);
        return redactedResult({ changes: [], findings, controls });
      });
    },

    /** `steward verify`: the same controls on the running stack, every failure counted. */
    async checkStack(input: StepInput): Promise<VerifyStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const containers = await observeContainers(s);
        await rememberExternalSecrets(input.spec, input.host);
        const { controls, findings } = await verifyStack(s, input.spec, containers, heartbeat, true);
        return redactedResult({ changes: [], findings, controls });
      });
    },

    /** Records the verified release (file digests and image IDs) and clears the pending mark. */
    async commitStack(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const s = await session(input);
        return { changes: await commitRelease(s, input.spec, input.mode), findings: [] };
      });
    },

    /** Puts the previous release back (files, images by ID, containers) when this deploy left one pending. */
    async rollbackStack(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const changes = await restorePrevious(s, input.spec, input.spec.stack.healthTimeoutSeconds, heartbeat);
        return { changes, findings: [] };
      });
    },
  };
}
