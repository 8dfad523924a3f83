// The only script of the web UI: more track rows on the upload form, and the "Back" link
// of error pages. Every page works without it (one track per upload).
document.addEventListener("DOMContentLoaded", () => {
  const tracks = document.getElementById("tracks");
  const add = document.getElementById("add-track");
  if (tracks && add && tracks.tagName === "DIV") {
    const template = tracks.querySelector("fieldset.track").cloneNode(true);
    const refresh = () => {
      const rows = tracks.querySelectorAll("fieldset.track");
      rows.forEach((row, i) => {
        row.querySelector("legend").textContent = "Track " + (i + 1);
        row.querySelector(".remove-track").hidden = rows.length < 2;
      });
    };
    tracks.addEventListener("click", (event) => {
      if (event.target.classList.contains("remove-track")) {
        event.target.closest("fieldset.track").remove();
        refresh();
      }
    });
    add.hidden = false;
    add.addEventListener("click", () => {
      const row = template.cloneNode(true);
      row.querySelectorAll("input").forEach((input) => { input.value = ""; });
      tracks.appendChild(row);
      refresh();
      row.querySelector("input").focus();
    });
    refresh();
  }
  document.querySelectorAll("a[data-back]").forEach((link) => {
    link.addEventListener("click", (event) => { event.preventDefault(); history.back(); });
  });
});
