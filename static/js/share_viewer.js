// The doctor's image viewer on a shared second opinion: the slider and the arrows step through the series'
// images without reloading the page (the links still work without this script).
(function () {
    "use strict";
    function start() {
        var viewer = document.getElementById("share-viewer");
        if (!viewer) { return; }
        var base = viewer.getAttribute("data-base");
        var images = (viewer.getAttribute("data-images") || "").split(" ").filter(Boolean);
        var img = document.getElementById("share-image");
        var slider = document.getElementById("share-slider");
        var position = document.getElementById("share-position");
        function show(index) {
            index = Math.min(Math.max(index, 1), images.length);
            slider.value = String(index);
            img.src = base + encodeURIComponent(images[index - 1]) + ".jpg";
            img.alt = "Image " + index + " of " + images.length + " of the series";
            position.textContent = index + " / " + images.length;
        }
        slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
        document.getElementById("share-prev").addEventListener("click", function (e) {
            e.preventDefault(); show(parseInt(slider.value, 10) - 1);
        });
        document.getElementById("share-next").addEventListener("click", function (e) {
            e.preventDefault(); show(parseInt(slider.value, 10) + 1);
        });
        viewer.addEventListener("keydown", function (e) {
            if (e.key === "ArrowLeft" || e.key === "ArrowDown") { show(parseInt(slider.value, 10) - 1); }
            if (e.key === "ArrowRight" || e.key === "ArrowUp") { show(parseInt(slider.value, 10) + 1); }
        });
    }
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
}());
