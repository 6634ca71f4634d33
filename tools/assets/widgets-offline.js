// Glue between the offline copies of the ipywidgets HTML manager and MathJax 3.
// Loaded after require.js and before html-manager/embed-amd.js (see _config.yml).
(function () {
  // 1. The manager finds its fonts and lazy chunks next to the AMD module it was loaded as;
  //    point that module name at our local copy instead of the page's own folder.
  var here = document.currentScript.src;
  var dist = new URL("html-manager", here).href;
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": dist } });

  // 2. Widgets typeset labels with the MathJax 2 call MathJax.Hub.Queue; the book loads
  //    MathJax 3, so translate that call to typesetPromise once MathJax is there.
  function install() {
    var mj = window.MathJax;
    if (!mj || mj.Hub) return;
    mj.Hub = {
      Queue: function (command) {
        var element = command && command[2];
        var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
        ready.then(function () {
          if (element && mj.typesetPromise) return mj.typesetPromise([element]);
        });
      },
    };
  }
  install();
  document.addEventListener("DOMContentLoaded", install);
})();
