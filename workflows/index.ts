/** Every workflow the steward worker runs. Deterministic: no Node modules, no I/O; side effects are activities. */
export { provisionHost } from './provision';
export { hardenHost } from './harden';
export { deployHost } from './deploy';
export { memoryCheckHost } from './memory';
export { driftHost } from './drift';
export { convergeHost } from './converge';
export { fleet } from './fleet';
export { auditExport } from './audit-export';
export { backupHost, restoreHost } from './backup';
export { upgradeHost } from './upgrade';
export { verifyHost } from './verify';
export { rotateSecret, rotateSecrets } from './rotate';
export { checkWatchdog } from './watchdog';
export { progressQuery } from './host-operation';
