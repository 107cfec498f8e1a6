"""FCN: the feature catcher network for single-image motion deblurring.

Paper: Zhang, Wang, Dong & Zeng, "A feature catcher with excellent deblurring
effects" (ICBDT 2022).
Four stages on multi-patch splits of the input (8, 4, 2, 1 patches, Fig. 2)::

    stage s = 0..3, patches P_s = split(I_B, grid_s)        grids (2,4) (2,2) (2,1) (1,1)
      F_early = PB(conv3x3(P_s))                             processing block, SELU (3.1)
      F_g     = QK(F_early)                                  query-key mechanism, global branch (3.2)
      F_l     = merge(LocalCatcher(F_g))                     U-Net of EFEMs (3.3), patches re-assembled
      s < 3:  I_s, F_s = MSAM(F_l, F_{s-1}, I_B)             multi-stage attention (3.4)
      s = 3:  I_3 = RIM(F_l, F_2, Enc(I_B), Dec(I_B), I_B)   raw information mechanism (3.5)
    forward(I_B) = [I_0, I_1, I_2, I_3]                      the last is the final image

Choices where the paper is silent (also in the model card notes):

- patch grids (rows, cols): 8 -> 2x4, 4 -> 2x2, 2 -> 2x1 (top/bottom halves, as
  DMPHN), 1 -> whole image; patches are processed as a batch and re-assembled
  before the MSAM, so stages exchange full-image features;
- the query-key mechanism (Fig. 3b): high-level features = two stride-2 3x3
  convs (SELU) plus their global mean (global context); G query maps =
  sigmoid(1x1 conv) in [0, 1], upsampled to full size; key maps = 1x1 conv of
  the early features split into G channel groups; each group is weighted by its
  query map, projected by a 1x1 conv and added back (residual). G per stage is
  "the same number of queries and key groups as the number of image chunks at
  each stage" (section 3.2): ``groups=(8, 4, 2, 1)``; an int gives every stage
  the same G (``groups=8`` is the structure of earlier dpdeblur releases);
- the EFEM (Fig. 4a): LayerNorm over channels, 1x1 conv narrowing to half the
  width, SELU, a 3x3 conv at the narrow width (the only spatial context of the
  module), SELU, 1x1 conv restoring the width, residual;
- the local feature catcher is a 3-level U-Net of EFEMs (widths C, 2C, 4C;
  bilinear down/up-sampling + 1x1 conv, additive skips);
- the MSAM (Fig. 4b) gates the previous stage's features into this stage's
  (sigmoid(1x1) * 1x1 of the concatenation), emits ``I_s = conv3x3(F) + I_B``
  and ``F_s = F + conv3x3(F) * sigmoid(conv3x3(I_s))`` (supervised attention);
- the RIM (Fig. 5) concatenates stage-3 features, stage-2 MSAM features, the
  blurry image's encoder output (1/4 scale, upsampled) and decoder output, fuses
  them with a 1x1 conv, refines with EFEMs and emits the final image + I_B.
  Part 1 is "the features processed in this stage by PB and Query-Key
  Mechanism": we read it as stage 3's features, i.e. after PB, QK and the local
  catcher that follows them in every stage. The text names a stage's features
  the same way for the MSAM ("high-level abstract information after the PB
  module and Query-Key mechanism"), and the literal reading (the QK output)
  would leave stage 3's local catcher (4.1M parameters) without any consumer,
  since the RIM is the last module of stage 3;
- Eq. 1 sums over s = 0..4 (five terms) while the text describes four stages:
  we return four images, one per stage (the RIM's image is stage 3's);
- block counts are set so the network has 20.3M parameters (paper: 20.309M).

Every output is an image residual on the blurry input. Input sizes: any, padded
(reflect) to a multiple of 16 (4 columns x two 2x down-samplings) and cropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpdeblur.models.blocks import LayerNorm2d, PaddedModel

__all__ = [
    "SELUBlock",
    "ProcessingBlock",
    "QueryKey",
    "EFEM",
    "LocalCatcher",
    "MSAM",
    "RawInformation",
    "FCN",
    "fcn",
    "split_patches",
    "merge_patches",
]

GRIDS = ((2, 4), (2, 2), (2, 1), (1, 1))


def conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def split_patches(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """:math:`(B, C, H, W) \\to (B r c, C, H/r, W/c)` for a grid of r rows, c columns."""
    r, c = grid
    b, ch, h, w = x.shape
    x = x.view(b, ch, r, h // r, c, w // c).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b * r * c, ch, h // r, w // c)


def merge_patches(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`split_patches`: :math:`(B r c, C, h, w) \\to (B, C, h r, w c)`."""
    r, c = grid
    n, ch, h, w = x.shape
    x = x.view(n // (r * c), r, c, ch, h, w).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n // (r * c), ch, h * r, w * c)


class SELUBlock(nn.Module):
    """conv3x3 - SELU - conv3x3 with a skip. Shape: :math:`(B, C, H, W)` kept."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3(dim, dim), nn.SELU(), conv3(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ProcessingBlock(nn.Module):
    """PB (Fig. 3a): a 3x3 conv then ``n`` stacked SELU blocks, C -> C channels."""

    def __init__(self, dim: int, n: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3(dim, dim), *[SELUBlock(dim) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class QueryKey(nn.Module):
    """Query-key mechanism (Fig. 3b): query maps in [0, 1] from high-level
    features weigh groups of key maps from the early features.

    Shape: :math:`(B, C, H, W) \\to (B, C, H, W)`, H and W multiples of 4.
    """

    def __init__(self, dim: int, groups: int = 8) -> None:
        super().__init__()
        self.groups = groups
        self.high = nn.Sequential(conv3(dim, dim, 2), nn.SELU(), conv3(dim, dim, 2), nn.SELU())
        self.query = nn.Conv2d(dim, groups, 1)
        self.key = nn.Conv2d(dim, dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def query_maps(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`(B, C, H, W) \\to (B, G, H, W)` with values in [0, 1]."""
        h = self.high(x)
        h = h + h.mean(dim=(2, 3), keepdim=True)  # global context
        q = torch.sigmoid(self.query(h))
        return F.interpolate(q, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query_maps(x).unsqueeze(2)  # (B, G, 1, H, W)
        k = self.key(x).view(b, self.groups, c // self.groups, h, w)
        return x + self.proj((q * k).view(b, c, h, w))


class EFEM(nn.Module):
    """Enhanced feature extraction module (Fig. 4a): LayerNorm, 1x1 narrowing,
    3x3 at the narrow width, 1x1 restoring the width, residual. Shape kept."""

    def __init__(self, dim: int, reduction: int = 2) -> None:
        super().__init__()
        mid = dim // reduction
        self.norm = LayerNorm2d(dim)
        self.body = nn.Sequential(
            nn.Conv2d(dim, mid, 1), nn.SELU(), conv3(mid, mid), nn.SELU(), nn.Conv2d(mid, dim, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(self.norm(x))


def _efems(dim: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[EFEM(dim) for _ in range(n)])


class _Resample(nn.Module):
    """Bilinear x``scale`` then 1x1 conv to ``cout`` channels."""

    def __init__(self, cin: int, cout: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False))


class LocalCatcher(nn.Module):
    """Local feature catcher: 3-level U-Net of EFEMs, widths C, 2C, 4C.

    Shape: :math:`(B, C, H, W) \\to (B, C, H, W)` (decoder output), H, W multiples of 4.
    Also returns the encoder's deepest features :math:`(B, 4C, H/4, W/4)`.
    """

    def __init__(self, dim: int, n: int) -> None:
        super().__init__()
        widths = (dim, 2 * dim, 4 * dim)
        self.enc = nn.ModuleList([_efems(c, n) for c in widths])
        self.down = nn.ModuleList([_Resample(widths[i], widths[i + 1], 0.5) for i in range(2)])
        self.up = nn.ModuleList([_Resample(widths[i + 1], widths[i], 2.0) for i in range(2)])
        self.dec = nn.ModuleList([_efems(c, n) for c in widths[:2]])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e0 = self.enc[0](x)
        e1 = self.enc[1](self.down[0](e0))
        e2 = self.enc[2](self.down[1](e1))
        d1 = self.dec[1](self.up[1](e2) + e1)
        d0 = self.dec[0](self.up[0](d1) + e0)
        return d0, e2


class MSAM(nn.Module):
    """Multi-stage attention module (Fig. 4b).

    Inputs: this stage's features :math:`(B, C, H, W)`, the previous stage's
    features (same shape, or None in stage 0), the blurry image :math:`(B, 3, H, W)`.
    Returns this stage's image :math:`(B, 3, H, W)` and features for the next stage.
    """

    def __init__(self, dim: int, has_prev: bool = True) -> None:
        super().__init__()
        self.has_prev = has_prev
        if has_prev:
            self.fuse = nn.Conv2d(2 * dim, dim, 1)
            self.gate = nn.Conv2d(2 * dim, dim, 1)
        self.to_img = conv3(dim, 3)
        self.from_img = conv3(3, dim)
        self.feat = conv3(dim, dim)

    def forward(self, f: torch.Tensor, prev: torch.Tensor | None, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.has_prev:
            cat = torch.cat([f, prev], dim=1)
            f = f + torch.sigmoid(self.gate(cat)) * self.fuse(cat)
        out = self.to_img(f) + img
        attn = torch.sigmoid(self.from_img(out))
        return out, f + self.feat(f) * attn


class RawInformation(nn.Module):
    """Raw information mechanism (Fig. 5), the last module of stage 3.

    Combines (1) stage-3 features, (2) stage-2 MSAM features, (3) the encoder
    output and (4) the decoder output of an encoder/decoder run on the blurry
    image. Returns the final image :math:`(B, 3, H, W)`.
    """

    def __init__(self, dim: int, n: int) -> None:
        super().__init__()
        self.head = conv3(3, dim)
        self.encoder = LocalCatcher(dim, 1)
        self.enc_proj = _Resample(4 * dim, dim, 4.0)
        self.fuse = nn.Conv2d(4 * dim, dim, 1)
        self.body = _efems(dim, n)
        self.tail = conv3(dim, 3)

    def forward(self, f: torch.Tensor, stage2: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        dec, enc = self.encoder(self.head(img))
        x = self.fuse(torch.cat([f, stage2, self.enc_proj(enc), dec], dim=1))
        return self.tail(self.body(x)) + img


class _Stage(nn.Module):
    """Global catcher (shallow conv, PB, QK) then local catcher, on patches."""

    def __init__(self, dim: int, n_pb: int, n_efem: int, groups: int) -> None:
        super().__init__()
        self.shallow = conv3(3, dim)
        self.pb = ProcessingBlock(dim, n_pb)
        self.qk = QueryKey(dim, groups)
        self.local = LocalCatcher(dim, n_efem)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.local(self.qk(self.pb(self.shallow(patches))))[0]


class FCN(PaddedModel):
    """FCN. Input :math:`(B, 3, H, W)`, output a list of 4 stage images
    :math:`(B, 3, H, W)`, the last is the final one; any H, W (padded to 16)."""

    multiple_of = 16

    def __init__(
        self, dim: int = 96, n_pb: int = 2, n_efem: int = 5, n_rim: int = 4, groups: int | tuple[int, ...] = (8, 4, 2, 1)
    ) -> None:
        super().__init__()
        per_stage = tuple(groups) if isinstance(groups, (tuple, list)) else (int(groups),) * len(GRIDS)
        if len(per_stage) != len(GRIDS) or any(g < 1 or dim % g for g in per_stage):
            raise ValueError(f"fcn groups must be an int or {len(GRIDS)} ints dividing dim={dim}, got {groups!r}")
        self.groups = per_stage
        self.stages = nn.ModuleList([_Stage(dim, n_pb, n_efem, g) for g in per_stage])
        self.msam = nn.ModuleList([MSAM(dim, has_prev=s > 0) for s in range(len(GRIDS) - 1)])
        self.rim = RawInformation(dim, n_rim)

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        images: list[torch.Tensor] = []
        prev = None
        for s, (stage, grid) in enumerate(zip(self.stages, GRIDS)):
            f = merge_patches(stage(split_patches(x, grid)), grid)
            if s < len(self.msam):
                img, prev = self.msam[s](f, prev, x)
            else:
                img = self.rim(f, prev, x)
            images.append(img)
        return images


def fcn(**kwargs) -> FCN:
    """Builder used by the registry."""
    return FCN(**kwargs)
