/* A read-only map of rounded public points (only when the site has map tiles configured). */
(function () {
  "use strict";
  if (!window.L) return;
  ["case-map", "list-map"].forEach(function (id) {
    var el = document.getElementById(id);
    if (!el) return;
    var points = JSON.parse(el.dataset.points || "[]");
    if (!points.length) return;
    var map = window.L.map(el);
    window.L.tileLayer(el.dataset.tiles, {maxZoom: 19, attribution: el.dataset.attribution}).addTo(map);
    var bounds = [];
    points.forEach(function (p) {
      var marker = window.L.marker([p.lat, p.lng], {title: p.title}).addTo(map);
      if (p.code) {
        var link = document.createElement("a");
        link.href = "/cases/" + encodeURIComponent(p.code);
        link.textContent = p.code + " · " + p.title + " · " + p.status;
        marker.bindPopup(link);
      }
      bounds.push([p.lat, p.lng]);
    });
    if (bounds.length === 1) map.setView(bounds[0], 16); else map.fitBounds(bounds, {padding: [20, 20]});
  });
})();
