/* ReadRoom's configuration of the OHIF Viewer (rendered by studies.viewer_views.viewer_app_config). */
window.config = {
  name: 'readroom',
  routerBasename: {{ router_basename|safe }},
  extensions: [],
  modes: [],
  // ReadRoom's study list is the worklist; every viewer session starts from a ReadRoom page.
  showStudyList: false,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  maxNumberOfWebWorkers: 2,
  maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 10 },
  showErrorDetails: 'production',
  investigationalUseDialog: { option: 'never' },
  customizationService: [{ 'ohif.tours': { $set: [] } }],
  whiteLabeling: {
    createLogoComponentFn: function (React) {
      return React.createElement('a', {
        href: {{ home_url|safe }},
        className: 'text-primary-active font-bold no-underline',
        style: { fontSize: '18px', letterSpacing: '0.02em' },
        title: 'Back to ReadRoom',
        'data-cy': 'readroom-home',
      }, 'ReadRoom');
    },
  },
  defaultDataSourceName: 'readroom',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'readroom',
      configuration: {{ data_source|safe }},
    },
  ],
};

// ReadRoom's service worker keeps the viewer's scripts, compiled, for its next opening (/viewer-sw.js). It is
// registered a few seconds after the page has loaded, so that this opening's first image does not wait for it.
if (typeof navigator !== 'undefined' && 'serviceWorker' in navigator && window.isSecureContext) {
  window.addEventListener('load', function () {
    setTimeout(function () {
      navigator.serviceWorker.register({{ service_worker_url|safe }}, { scope: {{ service_worker_scope|safe }} })
        .catch(function (error) { console.warn('ReadRoom: the viewer service worker was not registered', error); });
    }, 3000);
  });
}
