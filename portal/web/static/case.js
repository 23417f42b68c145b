/* A case's tracking page updates itself: server-sent events from /cases/{code}/events bring the
   new status and timeline entries. Without this script the page is the same, reload to update. */
(function () {
  "use strict";
  var article = document.getElementById("case");
  if (!article || !window.EventSource) return;
  var status = document.getElementById("case-status");
  var timeline = document.getElementById("timeline");
  var count = document.getElementById("reporter-count");
  var note = document.getElementById("live-note");
  // The reporter's rating form, there but hidden until the case is resolved.
  var rating = document.getElementById("rating");
  var source = new EventSource(article.dataset.events);

  source.addEventListener("open", function () { note.textContent = article.dataset.live; });
  source.addEventListener("case", function (message) {
    var data = JSON.parse(message.data);
    status.textContent = data.status_label;
    status.className = "badge big " + data.status;
    status.dataset.status = data.status;
    count.textContent = data.reporter_count;
    if (rating) rating.hidden = data.status !== "resolved" && data.status !== "closed";
    data.entries.forEach(function (entry) {
      if (timeline.querySelector('li[data-id="' + entry.id + '"]')) return;
      var li = document.createElement("li"), time = document.createElement("time");
      var title = document.createElement("strong");
      li.dataset.id = entry.id;
      time.textContent = entry.time;
      title.textContent = entry.title;
      li.appendChild(time);
      li.appendChild(title);
      if (entry.note) {
        var p = document.createElement("p");
        p.textContent = entry.note;
        li.appendChild(p);
      }
      if (entry.photo) {
        var link = document.createElement("a"), img = document.createElement("img");
        link.className = "photos";
        link.href = img.src = "/photos/" + encodeURIComponent(entry.photo);
        img.alt = entry.title;
        link.appendChild(img);
        li.appendChild(link);
      }
      timeline.appendChild(li);
    });
    if (data.merged_into) {
      note.textContent = article.dataset.merged.replace("{code}", data.merged_into);
      source.close();
    }
  });
})();
