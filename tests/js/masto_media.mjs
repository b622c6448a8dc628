// masto.js (the TypeScript Mastodon client) posting an image with a description, as a web
// app does: POST /api/v2/media (the client then polls GET /api/v1/media/:id until the
// upload has a URL), then a status with it. Prints the status as JSON.
// Usage: node masto_media.mjs <base URL> <access token> <PNG file> <description> <status text>
import { readFile } from 'node:fs/promises'
import { createRestAPIClient } from 'masto'

const [url, accessToken, path, description, text] = process.argv.slice(2)
const client = createRestAPIClient({ url, accessToken })
const file = new Blob([await readFile(path)], { type: 'image/png' })
const media = await client.v2.media.create({ file, description })
const status = await client.v1.statuses.create({ status: text, mediaIds: [media.id] })
process.stdout.write(JSON.stringify({ media, status }) + '\n')
