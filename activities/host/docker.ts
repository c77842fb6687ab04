/** dockerode over steward's own SSH session: each API connection is `docker system dial-stdio` on the host. */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import type { HostSession } from './session';

/**
 * A Docker API client for the host's engine, reusing `session` (no second SSH handshake, same pinned host key).
 * @param sudo reach the engine through `sudo -n`; false proves the session's user may use Docker itself.
 */
export function dockerOver(session: HostSession, sudo = true): Docker {
  const agent = new http.Agent({ keepAlive: false });
  const connect = (_options: unknown, done: (err: Error | null, socket?: Duplex) => void): undefined => {
    session.channel(['docker', 'system', 'dial-stdio'], sudo).then(
      (channel) => done(null, channel),
      (err: Error) => done(err),
    );
    return undefined;
  };
  Object.assign(agent, { createConnection: connect });
  // host and port only label the HTTP requests; the agent decides where they go.
  return new Docker({ protocol: 'http', host: 'docker', port: 2375, agent } as Docker.DockerOptions);
}
