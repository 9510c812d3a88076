/* ReadRoom's service worker for the OHIF Viewer's pages (rendered by studies.viewer_views.viewer_service_worker).

   It keeps the installed viewer's content-hashed scripts in a cache filled while it installs: Chromium compiles
   a script cached then and keeps the compiled code with it, so the viewer's next opening neither fetches nor
   compiles them. They are public and the same for everyone. It stores nothing else: pages, DICOMweb answers
   and everything else go to the network untouched, checked and audited by the server as before. */
const CACHE = {{ cache_name|safe }};
const SCRIPTS = new Set({{ scripts|safe }});

// Where the browser can route requests before this worker runs (Chromium's static routing), pages and
// DICOMweb, hundreds of requests a study, go straight to the network without waking it.
const STRAIGHT_TO_THE_NETWORK = [
  {condition: {requestMode: 'navigate'}, source: 'network'},
  {condition: {urlPattern: {pathname: '/dicomweb/*'}}, source: 'network'},
];

self.addEventListener('install', (event) => {
  if (event.addRoutes) {
    event.addRoutes(STRAIGHT_TO_THE_NETWORK).catch(() => {});  // else the fetch handler below lets them pass
  }
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll([...SCRIPTS])).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  // An older viewer's scripts (another cache of ours) are dropped; pages already open are taken over.
  event.waitUntil(caches.keys().then((names) => Promise.all(names
    .filter((name) => name.startsWith({{ cache_prefix|safe }}) && name !== CACHE)
    .map((name) => caches.delete(name)))).then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.search
      || !SCRIPTS.has(url.pathname)) {
    return;
  }
  event.respondWith(caches.open(CACHE)
    .then((cache) => cache.match(url.pathname))
    .then((cached) => cached || fetch(event.request)));
});
