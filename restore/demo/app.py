"""The demo page (gradio): pick a model, drop an image, compare before and after with a slider.

Layout: on the left an option file (the package's infer files, the quickstart's model, or any
path typed in), a weights file, the tile size, an optional synthetic noise (the image then
counts as the clean reference and the PSNR gain is shown), the image and, for shadow removal,
its mask; on the right the before/after slider (drag to compare, fullscreen to zoom), a summary
line and the result to download at its full bit depth. Dropping an image restores it at once.

Uploads arrive as files (``gr.File``), not as gradio-decoded images, so restore's own reader sees
the original bytes: 16-bit files, EXIF orientation and the pixel limit (with the CLI's message)
behave as in ``restore infer``. The elements carry ``elem_id`` s that the browser test uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from restore.data.image_io import IMAGE_EXTENSIONS
from restore.demo.choices import NOISES, default_weights, find_quickstart, infer_option_files, takes_mask, task_noise
from restore.demo.session import DemoSession
from restore.errors import RestoreError


def image_slider(gr: Any, **kwargs: Any) -> Any:
    """gradio's own ImageSlider (gradio >= 5.x), else the gradio_imageslider package's."""
    if hasattr(gr, "ImageSlider"):
        return gr.ImageSlider(**kwargs)
    from gradio_imageslider import ImageSlider

    return ImageSlider(**kwargs)


def starting_point(option_file: str | None, weights: str | None, quickstart_dir: Path) -> tuple[str, str, str]:
    """The option file and weights the page starts with, and a note saying where they come from."""
    quickstart = find_quickstart(quickstart_dir)
    if option_file is None and weights is None and quickstart is not None:
        note = (f"No weights given: using the quickstart model `{quickstart.weights}` (a small denoiser trained "
                "by `restore quickstart` on Gaussian noise, sigma 25). Pick another option file and weights file to compare.")
        return quickstart.options, quickstart.weights, note
    files = infer_option_files()
    chosen = option_file or (files[0] if files else "")
    chosen_weights = weights or default_weights(chosen)
    note = ""
    if not weights:
        hint = (f"or use the quickstart model: option file `{quickstart.options}`, weights `{quickstart.weights}`"
                if quickstart is not None else "or run `restore quickstart` (about 5 minutes on a CPU) to train a small denoiser "
                "that this page then offers")
        note = (f"No weights file given: `{chosen_weights or '(none)'}` is where the option file expects its released "
                f"weights; give the file you have, {hint}.")
    return chosen, chosen_weights, note


def build_app(session: DemoSession, option_file: str | None = None, weights: str | None = None,
              tile: int = 512, quickstart_dir: Path = Path("quickstart")) -> Any:
    """The gradio ``Blocks`` of the demo page (not launched)."""
    import gradio as gr

    start_options, start_weights, note = starting_point(option_file, weights, quickstart_dir)
    files = infer_option_files()
    quickstart = find_quickstart(quickstart_dir)
    choices = ([quickstart.options] if quickstart is not None else []) + files
    if start_options and start_options not in choices:
        choices.insert(0, start_options)
    extensions = sorted({e for e in IMAGE_EXTENSIONS})

    tracker = gr.Progress()  # gradio finds a progress bar by this default value

    def run(option: str, weights_file: str, tile_size: float, noise: str, image: str | None, mask: str | None,
            progress: Any = tracker) -> tuple[Any, str, str]:
        try:
            result = session.restore(option, weights_file, int(tile_size or 0), noise, image, mask,
                                     progress=lambda fraction, text: progress(fraction, desc=text))
        except RestoreError as exc:
            raise gr.Error(str(exc)) from None
        return (str(result.before), str(result.after)), result.text, str(result.after)

    def picked(option: str) -> tuple[Any, Any, Any]:
        weights_file = quickstart.weights if quickstart is not None and option == quickstart.options else default_weights(option)
        return gr.update(value=weights_file), gr.update(value=task_noise(option)), gr.update(visible=takes_mask(option))

    with gr.Blocks(title="restore demo") as app:
        gr.Markdown("# restore demo\nDrop an image: it is restored on this machine and shown before | after "
                    "(drag the slider; fullscreen to zoom). Nothing leaves the machine.")
        if note:
            gr.Markdown(note, elem_id="note")
        with gr.Row():
            with gr.Column(scale=1):
                option = gr.Dropdown(choices, value=start_options, allow_custom_value=True, label="Option file",
                                     elem_id="option-file")
                weights_box = gr.Textbox(start_weights, label="Weights file", elem_id="weights-file")
                tile_box = gr.Number(tile, precision=0, minimum=0, label="Tile size in pixels (0: the option file's)",
                                     elem_id="tile")
                noise = gr.Dropdown(list(NOISES), value=task_noise(start_options) if start_options else "none",
                                    label="Add synthetic noise first (the image is then the clean reference: PSNR gain)",
                                    elem_id="noise")
                image = gr.File(label="Image", file_types=extensions, type="filepath", elem_id="input-image")
                mask = gr.File(label="Shadow mask (shadow removal only; white = shadow)", file_types=extensions,
                               type="filepath", elem_id="mask-image", visible=takes_mask(start_options))
                button = gr.Button("Restore", variant="primary", elem_id="restore-button")
            with gr.Column(scale=2):
                slider = image_slider(gr, label="before | after", type="filepath", elem_id="result-slider")
                summary = gr.Markdown(elem_id="summary")
                download = gr.File(label="Download the result", interactive=False, elem_id="download")
        inputs = [option, weights_box, tile_box, noise, image, mask]
        outputs = [slider, summary, download]
        option.change(picked, [option], [weights_box, noise, mask])
        button.click(run, inputs, outputs)
        image.upload(run, inputs, outputs)
    return app
