"""Model cards of every registered network.

``params`` and ``macs`` are the counts of the network as built here (MACs for one
1680x1120 input, counted on the meta device); ``tests/test_models.py`` recomputes
them and checks them against the papers' numbers.
"""

from __future__ import annotations

from dpdeblur.models.registry import ModelCard, register_model

DMTNET_PAPER = "Zhang & Wang, DMTNet: Dynamic Multi-scale Network for Dual-pixel Images Defocus Deblurring with Transformer (arXiv:2209.06040)"

_DMTNET_NOTES = (
    "Views concatenated right then left (the paper's F_C = CONCAT(I_R, I_L)). "
    "Window 7, 3 heads; a transformer block = window + shifted-window Swin layer pair "
    "(T: 1.17M, 4.5% under Table 1's 1.23M, kept: the bundled weights fix T's structure). "
    "Scale branches at 1, 1/2, 1/4 (PixelUnshuffle + 1x1 conv down, 1x1 conv + PixelShuffle up): "
    "their RGMs cost 433.5G + 108.4G + 27.1G = 569G at 1680x1120, Table 1's per-module increment. "
    "RGM is a parameter-free skip around 5 RBM; RBM is a skip around 10 RM that ends with a conv3x3 "
    "(RCAN's residual group) from the second DMSSRM on: Table 1 adds 11.34M / 541G for the first DMSSRM "
    "and 11.89M / 606G for each later one; here 11.36M / 574G (plain) and 11.91M / 603G (RCAN-style). "
    "Identical modules cannot fit both S and H within 2%. model config plain_modules=0 / =N_D makes "
    "every module RCAN-style / plain. Output adds the mean of the two views (image residual). "
    "Paper metrics: DPDD combined, 16-bit, as published."
)

# name, N_D, params, macs, paper params, paper MACs, psnr, ssim, mae
_DMTNET = [
    ("dmtnet-t", 0, 1174494, 147080908800, 1.23e6, 147.37e9, 25.50, 0.786, 0.039),
    ("dmtnet-s", 1, 12532353, 721495757088, 12.57e6, 688.35e9, 26.27, 0.821, 0.036),
    ("dmtnet-b", 2, 24444132, 1324360397376, 24.46e6, 1294.41e9, 26.63, 0.834, 0.035),
    ("dmtnet-l", 3, 36355911, 1927225037664, 36.35e6, 1900.46e9, 26.83, 0.836, 0.034),
    ("dmtnet-h", 4, 48267690, 2530089677952, 48.24e6, 2506.51e9, 26.91, 0.841, 0.034),
]

#: the model ``deblur`` uses when given neither a model nor weights: the best bundled dual-pixel one
DEFAULT_MODEL = "dmtnet-s"

#: weights shipped in assets/weights (model card beside them): name -> (file, sha256)
BUNDLED = {
    "dmtnet-t": ("dmtnet-t-dp.safetensors", "8df3795b371229a86210f12a0821a234ea5f2ed6426595afd9991887697d6ac5"),
    "dmtnet-s": ("dmtnet-s-dp.safetensors", "b403fd2fc6dbc1aeaa8b889b296c0faf3cdf93ef1e960f7b8e38ce21b6679904"),  # float16
}

for name, nd, params, macs, pp, pm, psnr, ssim, mae in _DMTNET:
    register_model(
        ModelCard(
            name=name,
            family="dmtnet",
            paper=DMTNET_PAPER,
            layout="dp",
            views=("right", "left"),
            multiple_of=16 if nd else 4,
            params=params,
            macs=macs,
            paper_params=int(pp),
            paper_macs=int(pm),
            paper_metrics={"dpdd_psnr": psnr, "dpdd_ssim": ssim, "dpdd_mae": mae},
            module="dpdeblur.models.dmtnet",
            builder="dmtnet",
            config={"n_dmssrm": nd},
            # starts on the 28-px attention-window grid (patch 4 x window 7) and the padding multiple
            tile_align=28 if nd == 0 else 112,
            weights=BUNDLED.get(name, (None, None))[0],
            weights_sha256=BUNDLED.get(name, (None, None))[1],
            notes=_DMTNET_NOTES,
        )
    )

FCN_PAPER = "Zhang, Wang, Dong & Zeng, A feature catcher with excellent deblurring effects (ICBDT 2022)"

register_model(
    ModelCard(
        name="fcn",
        family="fcn",
        paper=FCN_PAPER,
        layout="rgb",
        views=(),
        multiple_of=16,
        params=20307387,
        macs=10836017740800,
        paper_params=20309000,
        paper_macs=None,
        paper_metrics={"gopro_psnr": 33.32, "gopro_ssim": 0.972, "hide_psnr": 32.04, "hide_ssim": 0.966},
        module="dpdeblur.models.fcn",
        builder="fcn",
        config={"dim": 96, "n_pb": 2, "n_efem": 5, "n_rim": 4, "groups": (8, 4, 2, 1)},
        # its stages split their whole input into 2x4 / 2x2 / 2x1 patches with per-patch means:
        # a tile's patches are not the image's, so it runs whole-image by default
        tileable=False,
        tile=0,
        tile_align=16,
        notes=(
            "Four stages on 8/4/2/1 patches (grids 2x4, 2x2, 2x1, 1x1); returns the 4 stage images, "
            "the last is final. PB = conv3x3 + 2 SELU blocks; query-key: G sigmoid query maps from a "
            "1/4-scale encoder (+ global mean) weigh G key groups, G = 8/4/2/1 = the stage's patch count "
            "(section 3.2; model config groups=8 for the earlier all-8 structure); local catcher = 3-level U-Net "
            "(96/192/384 ch) of 5 EFEMs per level (LayerNorm, 1x1 narrow to half, 3x3, 1x1 back); "
            "MSAM gates the previous stage's features in and emits image + features; RIM fuses stage-3 "
            "features (after PB, QK and the local catcher: read literally, the QK output would leave stage 3's "
            "local catcher unused), stage-2 features and an encoder/decoder of the blurry input. Image residual "
            "outputs. Block counts chosen to match the paper's 20.309M parameters. Paper metrics: "
            "GoPro / HIDE as published (trained on GoPro only)."
        ),
    )
)

JDRL_PAPER = "Li, Ren, Shu & Zuo, Learning Single Image Defocus Deblurring with Misaligned Training Pairs (AAAI 2023, arXiv:2211.14502)"

register_model(
    ModelCard(
        name="unet",
        family="unet",
        paper=JDRL_PAPER,
        layout="rgb",
        views=(),
        multiple_of=16,
        params=34515011,
        macs=1879311974400,
        paper_params=None,
        paper_macs=None,
        paper_metrics={"sdd_psnr": 24.62, "sdd_ssim": 0.758, "sdd_psnr_jdrl": 25.82, "sdd_ssim_jdrl": 0.783},
        module="dpdeblur.models.unet",
        builder="unet",
        config={"base": 64, "depth": 5, "dropout": 0.4},
        tile_align=16,
        notes=(
            "JDRL's baseline U-Net (supplement Table 6): 64-128-256-512-1024, two conv3x3+ReLU per level, "
            "max-pool, dropout 0.4 at the two deepest levels, nearest upsample + conv3x3+ReLU, concat skip, "
            "conv3x3 -> 3 + sigmoid. model config up=code: the authors' code instead (nearest upsample + 2x2 "
            "conv, 'same' padding, no ReLU; 31.03M parameters); their checkpoints (G_state_dict) load as is. "
            "Paper metrics on SDD with deformed GT: sdd_* = plain training (UNet), "
            "sdd_*_jdrl = trained with JDRL (UNet*, `train --jdrl`)."
        ),
    )
)

register_model(
    ModelCard(
        name="unet-dp",
        family="unet",
        paper=JDRL_PAPER,
        layout="dp",
        views=("left", "right"),
        multiple_of=16,
        params=4856739,
        macs=267021619200,
        paper_params=None,
        paper_macs=None,
        paper_metrics={},
        module="dpdeblur.models.unet",
        builder="unet",
        config={"base": 24, "depth": 5, "dropout": 0.0, "in_channels": 6, "residual": True},
        tile_align=16,
        notes=(
            "JDRL's baseline U-Net (supplement Table 6) built for dual-pixel input, the way DPDNet (Abuolaim & "
            "Brown, ECCV 2020) feeds a U-Net: the two views stacked left then right (6 channels); widths "
            "24-48-96-192-384 (a CPU-trainable size), no dropout, and an image residual: output = mean of the "
            "views + the last convolution (zero-initialised, no sigmoid). Five levels give a receptive field "
            "of a few hundred pixels, what large real dual-pixel defocus (radii 10-30 px) needs."
        ),
    )
)
