// Measure charts: each element with data-vega-spec="ID" gets the Vega-Lite spec held in the
// <script type="application/json" id="ID"> element, drawn by the vendored vega-embed.
// The CSP forbids `new Function`, which Vega uses to compile chart expressions by default: with
// `ast: true`, vega-embed evaluates them with its bundled expression interpreter instead.
function drawChart(element) {
  const source = document.getElementById(element.dataset.vegaSpec);
  if (!source || !window.vegaEmbed) return;
  const spec = JSON.parse(source.textContent);
  window
    .vegaEmbed(element, spec, {
      ast: true,
      actions: false,
      renderer: "svg",
      defaultStyle: false, // no injected <style> element (style-src 'self')
      tooltip: { disableDefaultStyle: true }, // its look is in value.css instead
    })
    .then(() => element.classList.add("chart-ready"))
    .catch((error) => {
      element.textContent = "The chart could not be drawn: " + error.message;
    });
}

document.querySelectorAll("[data-vega-spec]").forEach(drawChart);
