/**
 * The host keys steward trusted on first use, in a file of the worker's (never in the operator's spec): one line per
 * host, `<name> [<address>]:<port> <key type> <base64 key>`, `#` comments allowed.
 *
 *   $STEWARD_KNOWN_HOSTS (default .steward/known_hosts in the worker's working directory)
 *
 * A key pinned in the spec (`hosts[].hostKey`) wins over the file. A host's entry holds for its name at its address
 * and port: a host moved elsewhere is trusted anew only where the spec allows trust on first use. The file is
 * written atomically, mode 0600 in a 0700 directory, and refused when someone else owns it or others may write it
 * (whoever can write it can make steward accept their key). The CLI reads the same default when it runs beside the
 * worker (`schedule apply`, `dev up`). Uses node: modules: not for workflow code.
 */
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

export const KNOWN_HOSTS_ENV = 'STEWARD_KNOWN_HOSTS';
export const DEFAULT_KNOWN_HOSTS = '.steward/known_hosts';

/** Where a host answers: its spec name, address and SSH port. */
export interface HostEndpoint {
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

export interface KnownHost extends HostEndpoint {
  /** `<type> <base64>`, as OpenSSH writes a public key. */
  readonly key: string;
}

/** The known-hosts file is unreadable, malformed or not private to steward's user. */
export class KnownHostsUnusable extends Error {
  override readonly name = 'KnownHostsUnusable';
}

/** The file already pins another key for the host (only `dev up`, which made the host, may replace it). */
export class KnownHostConflict extends Error {
  override readonly name = 'KnownHostConflict';
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const KEY_TYPE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521))$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const ENDPOINT = /^\[([^\]\s]+)\]:(\d{1,5})$/;

/** Writers of one file in this process, one after another (a fleet's first runs trust several hosts at once). */
const queues = new Map<string, Promise<unknown>>();

export class KnownHosts {
  constructor(readonly path: string) {}

  static fromEnv(env: NodeJS.ProcessEnv = process.env): KnownHosts {
    return new KnownHosts(resolve(env[KNOWN_HOSTS_ENV] || DEFAULT_KNOWN_HOSTS));
  }

  /** The key pinned for the host, if any. @throws KnownHostsUnusable */
  async lookup(host: HostEndpoint): Promise<string | undefined> {
    return (await this.entries()).find((e) => sameEndpoint(e, host))?.key;
  }

  /** Every entry; none when the file does not exist. @throws KnownHostsUnusable naming the file and line */
  async entries(): Promise<KnownHost[]> {
    const text = await this.read();
    return text === undefined ? [] : parse(text, this.path);
  }

  /**
   * Pins `key` for the host. A key already pinned for it stays: the same one is no change; another one is refused
   * unless `replace` (a host steward itself just created, whose key it read out of band).
   * @returns whether the file changed. @throws KnownHostConflict, KnownHostsUnusable
   */
  async pin(host: HostEndpoint, key: string, { replace = false } = {}): Promise<boolean> {
    const line = entryLine({ ...host, key });
    parse(line, 'the new entry');
    const run = async (): Promise<boolean> => {
      const entries = await this.entries();
      const known = entries.find((e) => sameEndpoint(e, host));
      if (known && keyBlob(known.key) === keyBlob(key)) return false;
      if (known && !replace) {
        throw new KnownHostConflict(
          `${this.path} already pins another key for ${host.name} at [${host.address}]:${host.port}`,
        );
      }
      const kept = entries.filter((e) => !sameEndpoint(e, host)).map(entryLine);
      await this.write(
        `# steward's pinned SSH host keys: <name> [<address>]:<port> <type> <key>\n${[...kept, line].join('\n')}\n`,
      );
      return true;
    };
    const queued = (queues.get(this.path) ?? Promise.resolve()).then(run, run);
    queues.set(
      this.path,
      queued.catch(() => undefined),
    );
    return queued;
  }

  private async read(): Promise<string | undefined> {
    let info;
    try {
      info = await lstat(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new KnownHostsUnusable(`cannot read ${this.path}: ${(err as Error).message}`);
    }
    if (!info.isFile()) throw new KnownHostsUnusable(`${this.path} is not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && info.uid !== uid) {
      throw new KnownHostsUnusable(`${this.path} belongs to uid ${info.uid}, not to steward's user (uid ${uid})`);
    }
    if (info.mode & 0o022) {
      throw new KnownHostsUnusable(
        `${this.path} is writable by others (mode ${(info.mode & 0o777).toString(8)}): chmod 600 it`,
      );
    }
    return readFile(this.path, 'utf8');
  }

  private async write(text: string): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.${Date.now()}.tmp`;
    try {
      await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new KnownHostsUnusable(`cannot write ${this.path}: ${(err as Error).message}`);
    }
  }
}

/** The line of one entry. */
export function entryLine(e: KnownHost): string {
  return `${e.name} [${e.address}]:${e.port} ${e.key.split(' ').slice(0, 2).join(' ')}`;
}

function parse(text: string, source: string): KnownHost[] {
  const out: KnownHost[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    const where = `${source} line ${i + 1}`;
    const [name = '', endpoint = '', type = '', blob = ''] = fields;
    const at = ENDPOINT.exec(endpoint);
    const port = Number(at?.[2]);
    const problem =
      fields.length !== 4
        ? 'wants 4 fields: <name> [<address>]:<port> <type> <key>'
        : !NAME.test(name)
          ? `host name ${JSON.stringify(name)} is not a spec host name`
          : !at || port < 1 || port > 65535
            ? `${JSON.stringify(endpoint)} is not [<address>]:<port>`
            : !KEY_TYPE.test(type)
              ? `key type ${JSON.stringify(type)} is not one steward pins`
              : !BASE64.test(blob)
                ? 'the key is not base64'
                : undefined;
    if (problem) throw new KnownHostsUnusable(`${where}: ${problem}`);
    out.push({ name, address: at![1]!, port, key: `${type} ${blob}` });
  });
  return out;
}

function sameEndpoint(a: HostEndpoint, b: HostEndpoint): boolean {
  return a.name === b.name && a.address === b.address && a.port === b.port;
}

function keyBlob(key: string): string {
  return key.split(' ')[1] ?? '';
}
