/* Staff console: ask before a step that is hard to take back (forms with data-confirm).
   Without JavaScript the forms work the same, only without the question. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
