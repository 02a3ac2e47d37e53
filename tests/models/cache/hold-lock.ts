/** Child process for concurrent-loads.test.ts: takes `<root>/<key>.lock`, says so, and holds it until killed. */
import { NodeCacheStore } from '../../../node/cache/node-store.ts';

const [root, key] = process.argv.slice(2);
const lock = await new NodeCacheStore(root).tryLock(key);
if (!lock) process.exit(3);
process.send!('locked');
setInterval(() => {}, 1000);
