(function () {
  "use strict";
  // Sorting and filtering of the class table. Without JavaScript the table is complete and
  // readable; the controls stay hidden.
  var table = document.getElementById("students");
  if (!table) return;
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var headers = table.tHead.rows[0].cells;
  var search = document.getElementById("filter-text");
  var status = document.getElementById("filter-status");
  var shown = document.getElementById("shown-count");

  function key(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell.getAttribute("data-value");
    if (raw === null) raw = cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }

  function sortBy(index) {
    var th = headers[index];
    var numeric = th.getAttribute("data-type") === "number";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    for (var i = 0; i < headers.length; i++) headers[i].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var keyed = rows.map(function (row, position) {
      return { row: row, key: key(row, index, numeric), position: position };
    });
    keyed.sort(function (a, b) {
      if (a.key === b.key) return a.position - b.position;
      if (a.key === null) return 1; // blanks last in both directions
      if (b.key === null) return -1;
      var order = a.key < b.key ? -1 : 1;
      return ascending ? order : -order;
    });
    keyed.forEach(function (k) { tbody.appendChild(k.row); });
  }

  function applyFilter() {
    var text = search.value.trim().toLowerCase();
    var wanted = status.value;
    var count = 0;
    rows.forEach(function (row) {
      var haystack = (row.getAttribute("data-id") + " " + row.getAttribute("data-codes")).toLowerCase();
      var visible = (!text || haystack.indexOf(text) !== -1) &&
        (!wanted || row.getAttribute("data-status") === wanted ||
         (" " + row.getAttribute("data-marks") + " ").indexOf(" " + wanted + " ") !== -1);
      row.hidden = !visible;
      if (visible) count++;
    });
    shown.textContent = count + " of " + rows.length + " students shown";
  }

  Array.prototype.forEach.call(headers, function (th, index) {
    var button = document.createElement("button");
    button.type = "button";
    while (th.firstChild) button.appendChild(th.firstChild);
    th.appendChild(button);
    th.classList.add("sortable");
    // On the whole cell, not just the button: the button is there for the keyboard.
    th.addEventListener("click", function () { sortBy(index); });
  });
  search.addEventListener("input", applyFilter);
  status.addEventListener("change", applyFilter);
  document.getElementById("table-controls").hidden = false;
  applyFilter();
})();
