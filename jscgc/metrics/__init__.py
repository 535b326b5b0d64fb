"""Image metrics, with one table, :data:`METRICS` (:mod:`jscgc.metrics.table`): name -> :class:`Metric` (its
function, input range, kind, what it needs, orientation and figure label).

All images are float RGB (B, 3, H, W) in [0, 1]; ``ref`` is the source, ``out`` the reconstruction.

============== ===== ========= =========== ===================================================================
name           kind  needs     better      what
============== ===== ========= =========== ===================================================================
psnr           image           higher      10 log10(1 / MSE) in dB (torchmetrics); identical images give +inf
ms_ssim        image           higher      multi-scale SSIM, in [0, 1]; fewer scales below 176 px (:func:`ms_ssim`)
psnr_lp8       image           higher      PSNR after 8x8 average pooling of both: semantic consistency
psnr_lp16      image           higher      PSNR after 16x16 average pooling
colour_dist    image           lower       distance between per-channel means and standard deviations
psd_dist       image           lower       mean |Δ log10| of radially averaged power spectra (blur, noise)
hf_ratio       image           closer to 1 mean |Laplacian| of out / that of ref (< 1 blur, > 1 extra texture
                                           *or noise*: noise wins it, so read it beside detail_match)
detail_match   image           higher      Σ min / Σ max of the local (8x8-block) |Laplacian| energies of out and
                                           ref, in [0, 1]: falls for blur and for noise alike (:func:`detail_match`)
lpips_alex     image lpips     lower       LPIPS v0.1, AlexNet (Zhang et al. 2018; the paper's LPIPS), from
                                           ``<weights>/lpips`` (:mod:`jscgc.perceptual`, no torchvision)
lpips_vgg      image lpips     lower       LPIPS v0.1, VGG16
lpips_squeeze  image lpips     lower       LPIPS v0.1, SqueezeNet 1.1
dists          image dists     lower       DISTS (Ding et al. 2020), VGG16 from ``<weights>/lpips``, α/β from
                                           ``<weights>/dists``
dino           image dino      higher      cosine similarity of DINO ViT CLS features from ``<weights>/dino``
latent_fd      set   extractor lower       Fréchet distance of TAEF2-encoder features, every latent position a
                                           sample: a distributional *proxy*, not FID
rfid           set   fid       lower       Fréchet Inception distance from ``<weights>/fid``
patch_fd       set             lower       Fréchet distance of 8x8-patch DCT-II AC coefficients, summed over R, G,
                                           B: distributional and independent of TAEF2 (:func:`patch_fd`)
============== ===== ========= =========== ===================================================================

A metric whose weights (or extractor) are missing is reported as unavailable by name with the reason,
never with a made-up number: see :func:`available_metrics`.

The modules: :mod:`~jscgc.metrics.table` (the table, :func:`available_metrics`, :func:`evaluate_images`,
:func:`evaluate_sets`), :mod:`~jscgc.metrics.pixel` (PSNR, MS-SSIM, low-pass PSNR, colour),
:mod:`~jscgc.metrics.spectral` (power spectrum, HF ratio, detail match), :mod:`~jscgc.metrics.sets` (Fréchet
distances and their features), :mod:`~jscgc.metrics.learned` (LPIPS, DISTS, DINO, rFID and the loaders of
their weights), :mod:`~jscgc.metrics.common` (what they share). The names below are the package's API.
"""
from jscgc.metrics.common import MemoisedFeatures, MetricUnavailable
from jscgc.metrics.learned import FEATURE_CACHE_BYTES, dino_similarity, perceptual_distance
from jscgc.metrics.pixel import colour_distance, lowpass_psnr, ms_ssim, ms_ssim_scales, psnr
from jscgc.metrics.sets import (PATCH, PATCH_CAP, PATCH_SEED, SetMeasure, dct_matrix, frechet_distance,
                                latent_features, patch_dct_features, patch_fd, set_frechet)
from jscgc.metrics.spectral import detail_match, hf_ratio, power_spectrum_distance, radial_power_spectrum
from jscgc.metrics.table import METRICS, Metric, available_metrics, evaluate_images, evaluate_sets

__all__ = ["psnr", "ms_ssim", "ms_ssim_scales", "lowpass_psnr", "colour_distance", "radial_power_spectrum",
           "power_spectrum_distance", "hf_ratio", "frechet_distance", "latent_features", "set_frechet",
           "dct_matrix", "patch_dct_features", "patch_fd", "PATCH", "PATCH_CAP", "PATCH_SEED", "SetMeasure",
           "perceptual_distance", "detail_match", "dino_similarity", "FEATURE_CACHE_BYTES", "MemoisedFeatures",
           "MetricUnavailable", "Metric", "METRICS", "available_metrics", "evaluate_images", "evaluate_sets"]
