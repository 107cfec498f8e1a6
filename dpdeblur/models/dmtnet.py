"""DMTNet: dynamic multi-scale network for dual-pixel defocus deblurring.

Paper: Zhang & Wang, "DMTNet: Dynamic Multi-scale Network for Dual-pixel Images
Defocus Deblurring with Transformer", arXiv:2209.06040. Structure (Fig. 2)::

    F_C = CONCAT(I_R, I_L)                         (B, 6, H, W), right view first
    F_P = PatchPartition(F_C)                      conv k=s=4 -> 96 ch, LayerNorm
    F_0 = FeatureExtraction(F_P)                   N_T = 5 Swin blocks (window, shifted window)
    F_i = DMSSRM_i(F_{i-1}), i = 1..N_D            Eq. 12/14
    F_S = F_D + F_0                                Eq. 13 (global residual; N_D > 0)
    I_S = Upsample(F_S)                            conv3x3 -> 3*4*4, PixelShuffle(4)

Choices where the paper is silent (also in the model card notes):

- window size 7 and 3 heads (Swin-T stage 1 settings for 96 channels): with
  these, DMTNet-T matches Table 1's 147.37G MACs at 1680x1120 within 1%;
- a "transformer block" is a pair of Swin layers (regular + shifted window):
  1,174,494 parameters, 4.5% under Table 1's 1.23M, kept because the bundled
  weights fix this structure (Table 1's extra 55K parameters add only 0.29G
  MACs, i.e. do almost no per-pixel work, and the paper describes no such part);
- the feature map is reflect-padded to a multiple of the window inside the
  feature extraction module, so the network itself needs inputs divisible by 4
  (patch) times 4 (the 1/4 scale branch) = 16 only;
- three scale branches at 1, 1/2 and 1/4 of the feature map (scales 1, 2, 4):
  down by PixelUnshuffle ("DePixelShuffle") + 1x1 conv to 64 ch, up by 1x1 conv
  + PixelShuffle. The RGMs cost 3.69M MACs per position (100 convs of 64x64x9),
  i.e. 433.5G + 108.4G + 27.1G = 569.0G at 1680x1120 for scales (1, 2, 4), the
  size of Table 1's per-module increments (541-606G); (2, 4, 8) would give 142G,
  and 4 x 8 = 32 does not divide 1680, so 1/4 is the coarsest exact scale;
- RGM is a skip around 5 RBM (no parameters); RBM is a skip around 10 RM that,
  from the second DMSSRM on, ends with a conv3x3 as RCAN's residual group does
  (``plain_modules=1``). Table 1's increments are 11.34M / 540.98G for the
  first DMSSRM and 11.89M / 606.05G for each later one; a plain module has
  11,357,859 / 574.4G, one with RBM-ending convs 11,911,779 / 602.9G (+15 convs
  of 36,928 parameters). Identical modules cannot put S and H both within 2% of
  Table 1 (S wants <= 11.65M per module, H >= 11.53M, and S's MACs exclude any
  conv at full resolution); this split lands S..H within 0.3% in parameters
  and 5% in MACs. ``plain_modules=0`` makes every module RCAN-style,
  ``plain_modules=N_D`` every module plain (the structure of earlier releases);
- ``image_residual=True`` adds the mean of the two views to the output, a
  zero-parameter, zero-MAC choice that makes training converge much faster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpdeblur.models.blocks import PaddedModel, cached_tensors, pad_to_multiple

__all__ = [
    "PatchPartition",
    "WindowAttention",
    "SwinLayer",
    "TransformerBlock",
    "FeatureExtraction",
    "ResidualModule",
    "RBM",
    "RGM",
    "ScaleBranch",
    "AdaptiveScaleSelect",
    "DMSSRM",
    "Upsample",
    "DMTNet",
    "dmtnet",
]


class PatchPartition(nn.Module):
    """Token embedding: conv with kernel = stride = P, then LayerNorm over channels.

    Shape: :math:`(B, C_{in}, H, W) \\to (B, C, H/P, W/P)`.
    """

    def __init__(self, in_channels: int = 6, dim: int = 96, patch: int = 4) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """:math:`(B, H, W, C) \\to (B \\cdot nW, ws^2, C)`."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def _window_reverse(x: torch.Tensor, ws: int, b: int, h: int, w: int) -> torch.Tensor:
    """:math:`(B \\cdot nW, ws^2, C) \\to (B, H, W, C)`."""
    c = x.shape[-1]
    x = x.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


@cached_tensors(maxsize=32)
def _relative_index(ws: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    return (rel[..., 0] * (2 * ws - 1) + rel[..., 1]).reshape(-1)


def _shift_mask(h: int, w: int, ws: int, shift: int, device) -> torch.Tensor:
    """Attention mask (nW, ws^2, ws^2) with -inf-like values between regions
    that a cyclic shift brought together (Swin)."""
    img = torch.zeros(1, h, w, 1, device=device)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    win = _window_partition(img, ws).squeeze(-1)
    mask = win[:, None, :] - win[:, :, None]
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class WindowAttention(nn.Module):
    """Window multi-head self-attention with a relative position bias (Swin).

    Shape: :math:`(B \\cdot nW, N, C) \\to (B \\cdot nW, N, C)` with :math:`N = ws^2`.
    """

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.window, self.heads = window, heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def bias(self) -> torch.Tensor:
        n = self.window**2
        idx = _relative_index(self.window).to(self.relative_position_bias_table.device)
        return self.relative_position_bias_table[idx].view(n, n, self.heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        bn, n, c = x.shape
        qkv = self.qkv(x).view(bn, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = self.bias().unsqueeze(0).to(q.dtype)  # (1, h, N, N)
        if mask is not None:  # (nW, N, N) -> broadcast over batch
            nw = mask.shape[0]
            bias = (bias + mask.unsqueeze(1).to(q.dtype)).repeat(bn // nw, 1, 1, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(bn, n, c))


class SwinLayer(nn.Module):
    """``X = WMSA(LN(X)) + X; X = MLP(LN(X)) + X`` (Eq. 10-11), optionally shifted.

    Shape: :math:`(B, H, W, C) \\to (B, H, W, C)`, H and W multiples of the window.
    """

    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws, s = self.window, self.shift
        y = self.norm1(x)
        mask = None
        if s and min(h, w) > ws:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
            mask = _shift_mask(h, w, ws, s, x.device)
        y = self.attn(_window_partition(y, ws), mask)
        y = _window_reverse(y, ws, b, h, w)
        if mask is not None:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class TransformerBlock(nn.Module):
    """One of the paper's N_T transformer blocks: a window layer then a shifted-window layer."""

    def __init__(self, dim: int, heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [SwinLayer(dim, heads, window, shift, mlp_ratio) for shift in (0, window // 2)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class FeatureExtraction(nn.Module):
    """N_T transformer blocks on token embeddings.

    Shape: :math:`(B, C, h, w) \\to (B, C, h, w)`; internally reflect-padded to the window.
    """

    def __init__(self, dim: int, blocks: int, heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window = window
        self.blocks = nn.ModuleList([TransformerBlock(dim, heads, window, mlp_ratio) for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xp, (h, w) = pad_to_multiple(x, self.window)
        y = xp.permute(0, 2, 3, 1)
        for blk in self.blocks:
            y = blk(y)
        return y.permute(0, 3, 1, 2)[..., :h, :w].contiguous()


class ResidualModule(nn.Module):
    """RM: conv3x3 - PReLU - conv3x3 with a skip. Shape: :math:`(B, C, H, W)` kept."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RBM(nn.Module):
    """Residual block module: ``n`` RM with a skip around them.

    ``tail=True`` ends the block with a conv3x3 before the skip, as RCAN's residual
    group ends with a convolution (``x + conv(RM...RM(x))``); ``tail=False`` is a
    parameter-free skip. Shape: :math:`(B, C, H, W)` kept.
    """

    def __init__(self, channels: int, n: int, tail: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(*[ResidualModule(channels) for _ in range(n)])
        self.tail = nn.Conv2d(channels, channels, 3, padding=1) if tail else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + (self.tail(y) if self.tail is not None else y)


class RGM(nn.Module):
    """Residual group module: ``n_rbm`` RBM (each ``n_rm`` RM) with a skip, no channel attention."""

    def __init__(self, channels: int, n_rbm: int, n_rm: int, rbm_tail: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(*[RBM(channels, n_rm, rbm_tail) for _ in range(n_rbm)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ScaleBranch(nn.Module):
    """One scale of DMSSRM: DePixelShuffle(s) + 1x1 conv -> RGM -> 1x1 conv + PixelShuffle(s).

    Shape: :math:`(B, C, h, w) \\to (B, C, h, w)`, h and w multiples of ``scale``.
    """

    def __init__(self, dim: int, channels: int, scale: int, n_rbm: int, n_rm: int, rbm_tail: bool = False) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.PixelUnshuffle(scale), nn.Conv2d(dim * scale * scale, channels, 1))
        self.rgm = RGM(channels, n_rbm, n_rm, rbm_tail)
        self.up = nn.Sequential(nn.Conv2d(channels, dim * scale * scale, 1), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.rgm(self.down(x)))


class AdaptiveScaleSelect(nn.Module):
    """Eq. 15-16: ``alpha = softmax_S(W * GAP(F_{i-1}))``, one weight per scale per image.

    Shape: :math:`(B, C, h, w) \\to (B, S, 1, 1)`.

    Because GAP sees the whole input, a tile sees its own statistics rather than
    the image's. ``pooled_override`` (set by the tiled inference engine) replaces
    the GAP result with image-level statistics so every tile uses the same alphas.
    """

    def __init__(self, dim: int, scales: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, scales, 1)
        self.pooled_override: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pooled_override is not None:
            pooled = self.pooled_override.to(device=x.device, dtype=x.dtype).expand(x.shape[0], -1, 1, 1)
        else:
            pooled = F.adaptive_avg_pool2d(x, 1)
        return torch.softmax(self.conv(pooled), dim=1)


class DMSSRM(nn.Module):
    """Dynamic multi-scale sub-reconstruction module (Eq. 14).

    ``F_i = W(sum_j alpha_j F_scale_j + F_{i-1})`` with W a 1x1 fusion conv.

    Shape: :math:`(B, C, h, w) \\to (B, C, h, w)`, h and w multiples of max(scales).
    """

    def __init__(
        self, dim: int, channels: int, scales: tuple[int, ...], n_rbm: int, n_rm: int, rbm_tail: bool = False
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList([ScaleBranch(dim, channels, s, n_rbm, n_rm, rbm_tail) for s in scales])
        self.select = AdaptiveScaleSelect(dim, len(scales))
        self.fuse = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.select(x)
        y = x
        for j, branch in enumerate(self.branches):
            y = y + alpha[:, j : j + 1] * branch(x)
        return self.fuse(y)


class Upsample(nn.Module):
    """conv3x3 to ``out * P^2`` channels, then PixelShuffle(P). Shape: :math:`(B, C, h, w) \\to (B, out, hP, wP)`."""

    def __init__(self, dim: int, out_channels: int = 3, patch: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, out_channels * patch * patch, 3, padding=1)
        self.shuffle = nn.PixelShuffle(patch)
        # small initial output: with the image residual, training starts near the identity
        with torch.no_grad():
            self.conv.weight.mul_(0.01)
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class DMTNet(PaddedModel):
    """DMTNet. Input :math:`(B, 3V, H, W)` (views stacked in the card's order,
    right first by default), output :math:`(B, 3, H, W)`; any H, W (padded to
    ``multiple_of`` and cropped back)."""

    def __init__(
        self,
        n_dmssrm: int = 0,
        in_views: int = 2,
        dim: int = 96,
        patch: int = 4,
        blocks: int = 5,
        heads: int = 3,
        window: int = 7,
        mlp_ratio: float = 4.0,
        channels: int = 64,
        scales: tuple[int, ...] = (1, 2, 4),
        n_rbm: int = 5,
        n_rm: int = 10,
        plain_modules: int = 1,
        image_residual: bool = True,
    ) -> None:
        super().__init__()
        for k, v, lo in (("in_views", in_views, 1), ("dim", dim, 1), ("patch", patch, 1), ("blocks", blocks, 0),
                         ("heads", heads, 1), ("window", window, 1), ("channels", channels, 1), ("n_dmssrm", n_dmssrm, 0),
                         ("n_rbm", n_rbm, 0), ("n_rm", n_rm, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{k} must be a whole number >= {lo}, got {v!r}")
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads} (each head takes dim / heads channels)")
        if not scales or any(not isinstance(x, int) or x < 1 for x in scales):
            raise ValueError(f"scales must be whole numbers >= 1, got {scales!r}")
        self.in_views = in_views
        self.image_residual = image_residual
        self.multiple_of = patch * (max(scales) if n_dmssrm > 0 else 1)
        # tiled inference: tiles starting on the attention-window grid see the same windows as the whole image
        self.tile_align = patch * window
        self.patch_partition = PatchPartition(3 * in_views, dim, patch)
        self.feature_extraction = FeatureExtraction(dim, blocks, heads, window, mlp_ratio)
        self.reconstruction = nn.ModuleList(
            [DMSSRM(dim, channels, tuple(scales), n_rbm, n_rm, rbm_tail=i >= plain_modules) for i in range(n_dmssrm)]
        )
        self.upsample = Upsample(dim, 3, patch)

    @torch.no_grad()
    def init_grown(self, new: list[str]) -> None:
        """After loading a smaller DMTNet (fewer DMSSRMs; :func:`dpdeblur.models.weights.grow_weights`),
        make the new DMSSRMs (those with tensors in ``new``) leave the output unchanged:

        - each new module is an identity map: its scale branches' last convs are zero (no
          branch output) and its fusion conv is the identity, so ``F_i = F_{i-1}``;
        - grown from a network without DMSSRM (``F_S = F_0``), the first module's fusion conv is
          zero instead: the modules then output 0 and ``F_S = 0 + F_0`` (Eq. 13) is ``F_0``.

        The fusion convs and branch convs still receive gradients, so training moves away from
        the smaller network's function at once.
        """
        fresh = [i for i, _ in enumerate(self.reconstruction) if any(k.startswith(f"reconstruction.{i}.") for k in new)]
        for i in fresh:
            m = self.reconstruction[i]
            nn.init.zeros_(m.fuse.weight)
            nn.init.zeros_(m.fuse.bias)
            if i == 0:  # grown from F_S = F_0: this module outputs 0 (its branches keep their init)
                continue
            for branch in m.branches:
                nn.init.zeros_(branch.up[0].weight)
                nn.init.zeros_(branch.up[0].bias)
            m.fuse.weight[:, :, 0, 0].copy_(torch.eye(m.fuse.weight.shape[0], dtype=m.fuse.weight.dtype))

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        f0 = self.feature_extraction(self.patch_partition(x))
        f = f0
        for m in self.reconstruction:
            f = m(f)
        if len(self.reconstruction):
            f = f + f0
        out = self.upsample(f)
        if self.image_residual:
            b, c, h, w = x.shape
            out = out + x.view(b, self.in_views, 3, h, w).mean(dim=1)
        return out


def dmtnet(**kwargs) -> DMTNet:
    """Builder used by the registry."""
    return DMTNet(**kwargs)
