// megalodon's Mastodon user stream, as an app built on it opens it: the streaming URL read
// from /api/v1/instance, a WebSocket with the token. Prints one JSON line per event
// ({"event": "connect"|"update"|"delete"|"error", ...}) until killed.
// Usage: node stream_user.mjs <api base URL> <access token>
import generator from 'megalodon'

const [base, token] = process.argv.slice(2)
const client = generator('mastodon', base, token)
const say = (line) => process.stdout.write(JSON.stringify(line) + '\n')
const stream = await client.userStreaming()
stream.on('connect', () => say({ event: 'connect' }))
stream.on('update', (status) => say({ event: 'update', id: status.id, content: status.content, account: status.account.username }))
stream.on('delete', (id) => say({ event: 'delete', id }))
stream.on('error', (err) => say({ event: 'error', message: String(err) }))
stream.on('parser-error', (err) => say({ event: 'error', message: String(err) }))
