"""``restore demo``: a local web page to try a model on your own images (the ``[demo]`` extra).

* :mod:`restore.demo.choices` -- what the page offers: the package's infer option files, the
  quickstart's model, the noise of a denoising task (no gradio needed);
* :mod:`restore.demo.session` -- what a click does: load the model through :mod:`restore.api`,
  restore, write the result, measure the PSNR gain (no gradio needed);
* :mod:`restore.demo.app` -- the gradio page; :mod:`restore.demo.serve` -- binding and the address.

It sits at the top beside :mod:`restore.cli`; nothing below imports it, and gradio is imported
only when the page is built.
"""
