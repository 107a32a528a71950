// Runs once before the suite: fails early, with a clear message, when redis-server is missing.
import { redisServerPath } from './helpers/redis';

export default function setup(): void {
  redisServerPath();
}
