// The embedded store against the shared KeyStore contract.
import { ManualClock } from '../../../src/clock';
import { MemoryKeyStore } from '../../../src/keys/memory-store';
import { keyStoreSuite } from '../../shared/keystore-suite';

keyStoreSuite('memory', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  return { store: new MemoryKeyStore(clock), clock };
});
