// megalodon's detector, as apps built on it pick which API to speak to a server: it reads
// /.well-known/nodeinfo and the NodeInfo document it links. Prints what it detected.
// Usage: node detect.mjs <base URL>
import { detector } from 'megalodon'

const [base] = process.argv.slice(2)
process.stdout.write(JSON.stringify({ sns: await detector(base) }) + '\n')
