/**
 * The stack on a host as a release. Applying keeps the live release as `previous` (files and image IDs) before
 * touching anything, so a release that fails its health check or its verification can be rolled back to exactly
 * what served before.
 *
 *   <installDir>/.steward/pending        a release is being applied; `previous` holds what to go back to
 *   <installDir>/.steward/previous/      compose.yaml, openclaw.json, Caddyfile and images.json of the last release
 *   <installDir>/.steward/release.json   the committed release: file digests and image IDs
 */
import type { Change, Mode } from '../../model/report';
import { COMPOSE_PROJECT, stackLayout, type StackLayout } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { digest, fileResource, type FileSpec } from '../resources/files';
import { converge } from '../resources/resource';
import { shortId } from './images';
import { reloadLive } from './live-config';
import { compose, composeUp, observeContainers, renderStack, waitHealthy, type ObservedContainer } from './stack';
/** The live files a rollback restores, by their name under `previous/`. */
function previousSources(layout: StackLayout): Record<'compose.yaml' | 'openclaw.json' | 'Caddyfile', string> {
  return { 'compose.yaml': layout.composeFile, 'openclaw.json': layout.openclawJson, Caddyfile: layout.caddyfile };
}

/** Whether a release is pending: an earlier attempt began applying it and neither committed nor rolled it back. */
export async function releasePending(session: HostSession, layout: StackLayout): Promise<boolean> {
  const marker = run(`${layout.releaseDir}/pending`);
  const r = await session.check(`if [ -e ${marker} ]; then echo pending; fi`, { label: 'release pending' });
  return r.stdout.trim() === 'pending';
}

/**
 * Keeps the live release as `previous` and marks a release pending. A retry after a crash finds the marker and
 * keeps the first backup, so `previous` is always what served before this deploy began.
 */
export async function beginRelease(
  session: HostSession,
  layout: StackLayout,
  live: Map<string, ObservedContainer>,
): Promise<void> {
  const images = Object.fromEntries([...live.values()].map((c) => [c.service, { ref: c.imageRef, id: c.image }]));
  const prev = `${layout.releaseDir}/previous`;
  const copies = Object.entries(previousSources(layout))
    // -P: a link the container planted at a live path is kept as a link, never followed by root.
    .map(
      ([name, src]) =>
        `if [ -e ${run(src)} ] || [ -L ${run(src)} ]; then cp -P -p ${run(src)} ${run(`${prev}/${name}`)}; fi`,
    )
    .join('\n');
  await session.check(
    [
      'set -eu',
      `if [ -e ${run(`${layout.releaseDir}/pending`)} ]; then exit 0; fi`,
      `install -d -m 0700 ${run(layout.releaseDir)}`,
      `rm -rf ${run(prev)}; install -d -m 0700 ${run(prev)}`,
      copies,
      `printf '%s\\n' ${run(JSON.stringify(images))} > ${run(`${prev}/images.json`)}`,
      `date -u +%FT%TZ > ${run(`${layout.releaseDir}/pending`)}`,
    ].join('\n'),
    { label: 'keep previous release' },
  );
}

/** Records the verified release and clears the pending mark. Reports a change only when the release differs. */
export async function commitRelease(session: HostSession, spec: Spec, mode: Mode): Promise<Change[]> {
  const rendered = renderStack(spec);
  const live = await observeContainers(session);
  const manifest = {
    files: Object.fromEntries(rendered.files.map((f) => [f.path, digest(f.content)])),
    images: Object.fromEntries(
      [...live.values()]
        .sort((a, b) => a.service.localeCompare(b.service))
        .map((c) => [c.service, { ref: c.imageRef, id: c.image }]),
    ),
  };
  const file: FileSpec = {
    path: `${rendered.layout.releaseDir}/release.json`,
    content: `${JSON.stringify(manifest, null, 2)}\n`,
    owner: 0,
    group: 0,
    mode: '0600',
  };
  const changes = await converge(session, [fileResource(file, session.target.name)], mode);
  if (mode === 'apply')
    await session.check(run('rm', '-f', `${rendered.layout.releaseDir}/pending`), { label: 'clear pending' });
  return changes;
}

/**
 * Puts the previous release back: its files, its images under their refs (by ID), its containers; or, when there
 * was none (a first deploy), takes the new stack down. Secrets and volumes stay. Returns what it changed.
 */
export async function restorePrevious(
  session: HostSession,
  spec: Spec,
  timeoutSeconds: number,
  tick: () => void,
): Promise<Change[]> {
  const layout = stackLayout(spec);
  const prev = `${layout.releaseDir}/previous`;
  const r = await session.script(
    `[ -e ${run(`${layout.releaseDir}/pending`)} ] || { echo none; exit 0; }; cat ${run(`${prev}/images.json`)}; ls ${run(prev)}`,
  );
  if (r.stdout.trim() === 'none') return [];
  const [imagesLine = '', ...names] = r.stdout.trim().split('\n');
  let images: Record<string, { ref: string; id: string }> = {};
  try {
    images = imagesLine.startsWith('{') ? JSON.parse(imagesLine) : {};
  } catch {
    throw new UnexpectedHostOutput(session.target.name, `unreadable ${prev}/images.json`);
  }
  const changes: Change[] = [];
  if (!names.includes('compose.yaml')) {
    await session.check(
      `if [ -e ${run(layout.composeFile)} ]; then ${compose(layout, 'down', '--remove-orphans')}; fi`,
      {
        label: 'docker-compose down',
        timeoutMs: 300_000,
      },
    );
    changes.push({
      resource: `stack:${COMPOSE_PROJECT}`,
      action: 'delete',
      after: { reason: 'first deploy failed; stack removed' },
    });
  } else {
    // A link at the live path is replaced, never written through (--remove-destination).
    const restore = Object.entries(previousSources(layout))
      .filter(([name]) => names.includes(name))
      .map(([name, dest]) => `cp -P -p --remove-destination ${run(`${prev}/${name}`)} ${run(dest)}`);
    const retag = Object.values(images).map((i) => `docker tag ${run(i.id)} ${run(i.ref)}`);
    const before = await observeContainers(session);
    await session.check(['set -eu', ...restore, ...retag].join('\n'), { label: 'restore previous release' });
    await composeUp(session, layout);
    const p = run(`${prev}/openclaw.json`);
    const restoredJson = await session.check(`if [ -f ${p} ] && [ ! -L ${p} ]; then sha256sum < ${p}; fi`, {
      label: 'restored openclaw.json',
    });
    // The running containers take the restored files live; asked every time, so a retry after a cut-off attempt
    // does it too (a gateway that holds them already confirms at once, and a repeated caddy reload changes nothing).
    const reloads = await reloadLive(
      session,
      spec,
      layout,
      restoredJson.stdout.split(' ')[0] ?? '',
      { openclawJson: names.includes('openclaw.json'), caddyfile: names.includes('Caddyfile') },
      before,
      tick,
    );
    await waitHealthy(session, Object.keys(images), timeoutSeconds, tick);
    for (const [service, i] of Object.entries(images)) {
      changes.push({
        resource: `container:${service}`,
        action: 'update',
        after: { image: `${i.ref} (${shortId(i.id)})`, rolledBack: true },
      });
    }
    changes.push(...reloads);
  }
  await session.check(run('rm', '-f', `${layout.releaseDir}/pending`), { label: 'clear pending' });
  return changes;
}
