/* The report form: category hints, "use my location", an optional map picker, photo checks.
   Without this script the form works: the address field alone gives the place. */
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  if (!form) return;

  var category = document.getElementById("category");
  var hint = document.getElementById("category-hint");
  category.addEventListener("change", function () {
    var option = category.options[category.selectedIndex];
    if (option && option.dataset.hint) hint.textContent = option.dataset.hint;
  });

  var lat = document.getElementById("lat"), lng = document.getElementById("lng");
  var box = document.getElementById("locate-box"), button = document.getElementById("locate");
  var clear = document.getElementById("clear-location"), said = document.getElementById("located");
  var marker = null, map = null;

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, key) {
      return key in values ? values[key] : all;
    });
  }
  function setPoint(la, ln, text) {
    lat.value = la.toFixed(6);
    lng.value = ln.toFixed(6);
    said.textContent = fill(text, {lat: la.toFixed(5), lng: ln.toFixed(5)});
    clear.hidden = false;
    if (map) {
      if (marker) marker.setLatLng([la, ln]); else marker = window.L.marker([la, ln]).addTo(map);
    }
  }

  if (navigator.geolocation) {
    box.hidden = false;
    button.addEventListener("click", function () {
      said.textContent = button.dataset.busy;
      button.disabled = true;
      navigator.geolocation.getCurrentPosition(function (pos) {
        button.disabled = false;
        var c = pos.coords;
        setPoint(c.latitude, c.longitude,
                 fill(button.dataset.taken, {m: Math.max(1, Math.round(c.accuracy || 0))}));
        if (map) map.setView([c.latitude, c.longitude], 17);
      }, function () {
        button.disabled = false;
        said.textContent = button.dataset.failed;
        document.getElementById("address").focus();
      }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
    });
  }
  clear.addEventListener("click", function () {
    lat.value = ""; lng.value = ""; said.textContent = ""; clear.hidden = true;
    if (marker) { marker.remove(); marker = null; }
    button.focus();
  });

  var mapEl = document.getElementById("pick-map");
  if (mapEl && window.L) {
    var start = lat.value && lng.value ? [parseFloat(lat.value), parseFloat(lng.value)] : [31.2304, 121.4737];
    map = window.L.map(mapEl).setView(start, lat.value ? 17 : 12);
    window.L.tileLayer(mapEl.dataset.tiles, {maxZoom: 19, attribution: mapEl.dataset.attribution}).addTo(map);
    if (lat.value) marker = window.L.marker(start).addTo(map);
    map.on("click", function (e) { setPoint(e.latlng.lat, e.latlng.lng, button.dataset.picked); });
  }

  // Refuse oversized or too many photos before uploading them over a phone connection.
  var media = document.getElementById("media"), check = document.getElementById("media-check");
  function photosOk() {
    var files = media.files || [], max = parseInt(form.dataset.maxPhotos, 10);
    var bytes = parseInt(form.dataset.maxPhotoBytes, 10), message = "";
    if (files.length > max) message = form.dataset.tooMany;
    for (var i = 0; i < files.length && !message; i++) {
      if (files[i].size > bytes) message = form.dataset.tooLarge;
    }
    check.textContent = message;
    check.hidden = !message;
    return !message;
  }
  media.addEventListener("change", photosOk);
  form.addEventListener("submit", function (e) {
    if (!photosOk()) { e.preventDefault(); media.focus(); }
  });
})();
