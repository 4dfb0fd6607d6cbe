// Tables (the text equivalent of every chart) and their "Download CSV" buttons.
// A cell is a number, a string, or { text, value?, title?, className? }: `value` is the exact
// number behind a formatted text (a rate behind "12.5%"); the CSV holds values, never texts
// rounded for the eye, so a download has exactly the numbers the API answered.

const fmt = new Intl.NumberFormat();
const tables = new WeakMap(); // table -> { head, rows }

const rawOf = (cell) => {
  if (cell && typeof cell === "object") return cell.value !== undefined ? cell.value : cell.text;
  return cell;
};

function csvField(value) {
  if (value == null) return "";
  const s = String(value);
  return /[",\r\n]/.test(s) || /^[=+\-@\t]/.test(s) && Number.isNaN(Number(s)) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The CSV text of a table's numbers (RFC 4180, CRLF line ends). */
export function csvOf(head, rows) {
  return [head, ...rows.map((r) => r.map(rawOf))].map((r) => r.map(csvField).join(",")).join("\r\n") + "\r\n";
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * A "Download CSV" button after the table's wrapper (after its folded "Numbers" when it is
 * one, so the button shows without unfolding), once; `name` becomes `<name>.csv`.
 */
function ensureButton(table, name) {
  const wrap = table.closest("details") || table.closest(".table-wrap") || table;
  let button = wrap.nextElementSibling;
  if (!(button && button.classList.contains("csv"))) {
    button = Object.assign(document.createElement("button"), { type: "button", className: "csv", textContent: "Download CSV" });
    button.addEventListener("click", () => {
      const data = tables.get(table);
      if (data) download(`${button.dataset.name}.csv`, csvOf(data.head, data.rows));
    });
    wrap.after(button);
  }
  button.dataset.name = name;
  button.setAttribute("aria-label", `Download CSV: ${name}`);
}

export function fillTable(table, head, rows, { name, empty = "No events match." } = {}) {
  tables.set(table, { head, rows });
  if (name) ensureButton(table, name);
  const thead = document.createElement("thead");
  const tr = document.createElement("tr");
  head.forEach((h, i) => {
    const th = document.createElement("th");
    th.textContent = h;
    th.scope = "col";
    if (i > 0 && rows.length && rows.every((r) => typeof rawOf(r[i]) === "number" || r[i] == null)) th.className = "num";
    tr.append(th);
  });
  thead.append(tr);
  const tbody = document.createElement("tbody");
  for (const row of rows) {
    const r = document.createElement("tr");
    for (const cell of row) {
      const td = document.createElement("td");
      if (typeof cell === "number") {
        td.textContent = fmt.format(cell);
        td.className = "num";
        td.dataset.value = String(cell);
      } else if (cell && typeof cell === "object") {
        td.textContent = cell.text;
        if (cell.title) td.title = cell.title;
        if (cell.className) td.className = cell.className;
        if (cell.value !== undefined && cell.value !== null) td.dataset.value = String(cell.value);
      } else {
        td.textContent = cell ?? "";
      }
      r.append(td);
    }
    tbody.append(r);
  }
  if (!rows.length) {
    const r = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = head.length;
    td.className = "muted";
    td.textContent = empty;
    r.append(td);
    tbody.append(r);
  }
  table.replaceChildren(thead, tbody);
}
