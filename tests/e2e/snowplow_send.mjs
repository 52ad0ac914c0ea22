// Sends events to a streamrec collector with the real Snowplow node tracker from npm.
// Usage: node snowplow_send.mjs <endpoint> <app_id> <base64:true|false> <buffer_size> <events.json>
// events.json: [{"duid","uid"?,"kind":"page_view","url"} | {"duid","kind":"self_describing",
//               "schema","data","context"?:[{schema,data}]}]
// Prints one JSON line: {"sent":N,"succeeded_batches":B,"failed":F,"statuses":[...]}
import { readFileSync } from 'node:fs';
import { newTracker, buildPageView, buildSelfDescribingEvent } from '@snowplow/node-tracker';

const [endpoint, appId, base64, bufferSize, eventsFile] = process.argv.slice(2);
const events = JSON.parse(readFileSync(eventsFile, 'utf8'));
const statuses = [];
let succeeded = 0;
let failed = 0;

const tracker = newTracker(
  { namespace: 'e2e', appId, encodeBase64: base64 === 'true' },
  {
    endpoint,
    eventMethod: 'post',
    bufferSize: Number(bufferSize),
    retryFailedRequests: false,
    onRequestSuccess: (batch, response) => {
      succeeded += 1;
      statuses.push(response.status);
    },
    onRequestFailure: (failure, response) => {
      failed += 1;
      statuses.push(response ? response.status : 0);
    },
  },
);

for (const e of events) {
  tracker.setDomainUserId(e.duid);
  tracker.setUserId(e.uid ?? null);
  if (e.kind === 'page_view') {
    tracker.track(buildPageView({ pageUrl: e.url, pageTitle: e.title ?? 'product' }), e.context);
  } else if (e.kind === 'self_describing') {
    tracker.track(buildSelfDescribingEvent({ event: { schema: e.schema, data: e.data } }),
      e.context);
  } else {
    throw new Error(`unknown kind ${e.kind}`);
  }
}
await tracker.flush();
console.log(JSON.stringify({ sent: events.length, succeeded_batches: succeeded, failed, statuses }));
