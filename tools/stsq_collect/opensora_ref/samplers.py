"""Samplers of OPENSORA.md §8-§9, float32 arithmetic with float64 coefficient tables:

- rectified flow (v1.2, §9.2): timestep transform and the dt rule, CFG over the first channel half;
- IDDPM (v1.0, §9.1): respaced learned-range ancestral sampling, CFG on `cfg_channel` channels;
- DDIM (η = 0, ε-prediction) on the same respaced schedule, as ViDiT-Q runs OpenSora v1.0 with
  `IDDPM(num_sampling_steps=20)` + `ddim_sample_loop` (guided-diffusion's DDIM step).

Noise is never drawn here: callers pass the initial latent and the per-step noise, so another
implementation can replay a trajectory without matching an RNG.
"""

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# classifier-free guidance (§8)
# ---------------------------------------------------------------------------------------------


def cfg_text_inputs(y_cond, y_embedding):
    """y = [cond (n); null (n)], null = y_embedding repeated (§4.9). y_cond [n, 1, L, Cc]."""
    n = y_cond.shape[0]
    null = y_embedding[None, None].to(y_cond.dtype).expand(n, 1, *y_embedding.shape)
    return torch.cat([y_cond, null], dim=0)


# ---------------------------------------------------------------------------------------------
# rectified flow (§9.2)
# ---------------------------------------------------------------------------------------------


def timestep_transform(t, height, width, num_frames, num_timesteps=1000, base_resolution=512 * 512,
                       base_num_frames=1, scale=1.0):
    """t: float32 tensor [n] of raw timesteps; height/width/num_frames tensors [n] (float32 for the
    fp32 engine schedule, bfloat16 to reproduce the reference pipeline's rounding of r, §10)."""
    u = t / num_timesteps
    ratio_space = (height * width / base_resolution).sqrt()
    if int(num_frames.reshape(-1)[0]) == 1:
        nf = torch.ones_like(num_frames)
    else:
        nf = num_frames // 17 * 5
    ratio_time = (nf / base_num_frames).sqrt()
    ratio = ratio_space * ratio_time * scale
    new_t = ratio * u / (1 + (ratio - 1) * u)
    return new_t * num_timesteps


def rf_timesteps(num_steps=30, height=None, width=None, num_frames=None, num_timesteps=1000,
                 use_timestep_transform=True, dtype=torch.float32):
    """Returns (t' float32 [num_steps], dt float32 [num_steps]) for one sample.

    t_i = (1 − i/num_steps)·1000 (a Python double, stored as float32), transformed; dt_i =
    (t'_i − t'_{i+1})/1000 and dt_last = t'_last/1000. `dtype` is the dtype of height, width and
    num_frames (bf16 in OpenSora's reference pipeline; float32 for the engine's fp32 schedule)."""
    ts = []
    for i in range(num_steps):
        t = torch.tensor([(1.0 - i / num_steps) * num_timesteps], dtype=torch.float32)
        if use_timestep_transform:
            h = torch.tensor([float(height)], dtype=dtype)
            w = torch.tensor([float(width)], dtype=dtype)
            f = torch.tensor([float(num_frames)], dtype=dtype)
            t = timestep_transform(t, h, w, f, num_timesteps=num_timesteps).to(torch.float32)
        ts.append(t)
    dts = []
    for i in range(num_steps):
        dt = ts[i] - ts[i + 1] if i < num_steps - 1 else ts[i]
        dts.append(dt / num_timesteps)
    return torch.cat(ts), torch.cat(dts)


def rf_ratio(height, width, num_frames, dtype=torch.float32):
    """r = r_space·r_time of the transform, in the given dtype (diagnostic)."""
    h = torch.tensor([float(height)], dtype=dtype)
    w = torch.tensor([float(width)], dtype=dtype)
    f = torch.tensor([float(num_frames)], dtype=dtype)
    rs = (h * w / (512 * 512)).sqrt()
    nf = torch.ones_like(f) if int(num_frames) == 1 else f // 17 * 5
    return float((rs * (nf / 1).sqrt() * 1.0)[0])


@torch.no_grad()
def rf_sample(model, z, timesteps, dts, cfg_scale, y_cond, mask, **model_kwargs):
    """v1.2 RFLOW loop (§9.2, §8). z [n, C, T, H, W] initial noise; timesteps/dts float32 [S].
    model(x, timestep, y, mask, **kwargs) -> [2n, Cout, ...]. Returns dict of per-step tensors."""
    y = cfg_text_inputs(y_cond, model.y_embedder.y_embedding)
    n = z.shape[0]
    z = z.to(torch.float32)
    traj, vs, outs = [z.clone()], [], []
    for i in range(len(timesteps)):
        z_in = torch.cat([z, z], 0)
        t = timesteps[i].reshape(1).repeat(2 * n)
        out = model(z_in, t, y, mask, **model_kwargs)
        outs.append(out)
        pred = out.chunk(2, dim=1)[0]  # first channel half: the velocity
        v_cond, v_uncond = pred.chunk(2, dim=0)
        v = v_uncond + cfg_scale * (v_cond - v_uncond)
        vs.append(v)
        z = z + v * dts[i]
        traj.append(z.clone())
    return {"z": torch.stack(traj), "v": torch.stack(vs), "model_out": torch.stack(outs), "y": y}


# ---------------------------------------------------------------------------------------------
# IDDPM / DDIM (§9.1)
# ---------------------------------------------------------------------------------------------


def space_timesteps(num_timesteps, section_counts):
    """guided-diffusion's respacing for an int / list of section counts (not the "ddimN" form)."""
    if isinstance(section_counts, int):
        section_counts = [section_counts]
    size_per = num_timesteps // len(section_counts)
    extra = num_timesteps % len(section_counts)
    start = 0
    steps = set()
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(f"cannot divide section of {size} steps into {count}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0
        for _ in range(count):
            steps.add(start + round(cur))
            cur += stride
        start += size
    return sorted(steps)


def linear_betas(num_timesteps=1000):
    scale = 1000 / num_timesteps
    return np.linspace(scale * 0.0001, scale * 0.02, num_timesteps, dtype=np.float64)


class SpacedDiffusion:
    """Respaced learned-range ε-prediction diffusion (float64 tables, gathered as float32)."""

    def __init__(self, num_sampling_steps, num_timesteps=1000):
        base_ac = np.cumprod(1.0 - linear_betas(num_timesteps))
        self.timestep_map = space_timesteps(num_timesteps, num_sampling_steps)
        last = 1.0
        betas = []
        for i in self.timestep_map:
            betas.append(1.0 - base_ac[i] / last)
            last = base_ac[i]
        b = np.array(betas, dtype=np.float64)
        self.betas = b
        ac = np.cumprod(1.0 - b)
        ac_prev = np.append(1.0, ac[:-1])
        self.alphas_cumprod = ac
        self.alphas_cumprod_prev = ac_prev
        self.sqrt_recip_ac = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_ac = np.sqrt(1.0 / ac - 1)
        self.posterior_variance = b * (1.0 - ac_prev) / (1.0 - ac)
        pv = self.posterior_variance
        self.posterior_log_variance_clipped = np.log(np.append(pv[1], pv[1:])) if len(pv) > 1 else np.log(pv)
        self.posterior_mean_coef1 = b * np.sqrt(ac_prev) / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - ac_prev) * np.sqrt(1.0 - b) / (1.0 - ac)
        self.log_betas = np.log(b)

    @staticmethod
    def _g(arr, k):
        return torch.tensor(float(arr[k]), dtype=torch.float64).to(torch.float32)

    def predict_xstart(self, x, k, eps):
        return self._g(self.sqrt_recip_ac, k) * x - self._g(self.sqrt_recipm1_ac, k) * eps

    def p_sample(self, model_output, x, k, noise):
        """Learned-range ancestral step at respaced index k; model_output [.., 2·Cin, ...]."""
        cin = x.shape[1]
        eps, var_values = model_output[:, :cin], model_output[:, cin:]
        min_log = self._g(self.posterior_log_variance_clipped, k)
        max_log = self._g(self.log_betas, k)
        frac = (var_values + 1) / 2
        log_var = frac * max_log + (1 - frac) * min_log
        x0 = self.predict_xstart(x, k, eps)
        mean = self._g(self.posterior_mean_coef1, k) * x0 + self._g(self.posterior_mean_coef2, k) * x
        nonzero = 1.0 if k != 0 else 0.0
        return mean + nonzero * torch.exp(0.5 * log_var) * noise

    def ddim_step(self, model_output, x, k):
        """η = 0 DDIM step (guided-diffusion `ddim_sample`), clip_denoised=False."""
        cin = x.shape[1]
        eps = model_output[:, :cin]
        x0 = self.predict_xstart(x, k, eps)
        eps = (self._g(self.sqrt_recip_ac, k) * x - x0) / self._g(self.sqrt_recipm1_ac, k)
        ab_prev = self._g(self.alphas_cumprod_prev, k)
        sigma = 0.0
        return x0 * torch.sqrt(ab_prev) + torch.sqrt(1 - ab_prev - sigma ** 2) * eps


def forward_with_cfg(model, x, timestep, y, cfg_scale, cfg_channel, mask=None):
    """v1.0 CFG (§8): the first half x[:n] is duplicated; the first `cfg_channel` channels are
    guided and copied to both halves; the other channels keep each half's own values."""
    half = x[: len(x) // 2]
    out = model(torch.cat([half, half], 0), timestep, y, mask)
    eps, rest = out[:, :cfg_channel], out[:, cfg_channel:]
    cond, uncond = torch.split(eps, len(eps) // 2, dim=0)
    g = uncond + cfg_scale * (cond - uncond)
    return torch.cat([torch.cat([g, g], 0), rest], dim=1), out


@torch.no_grad()
def iddpm_sample(model, z, noises, num_sampling_steps, cfg_scale, y_cond, mask, cfg_channel=3,
                 sampler="iddpm"):
    """v1.0 IDDPM (or DDIM η=0) loop. z [n, ...]; noises [K, 2n, ...] (ignored for DDIM and for
    the last step). The latent batch is [z; z]; the result is the first half of the last latent."""
    diff = SpacedDiffusion(num_sampling_steps)
    y = cfg_text_inputs(y_cond, model.y_embedder.y_embedding)
    x = torch.cat([z, z], 0).to(torch.float32)
    traj, outs, guided, ts = [x.clone()], [], [], []
    K = len(diff.timestep_map)
    for step, k in enumerate(reversed(range(K))):
        tau = diff.timestep_map[k]
        ts.append(tau)
        t = torch.full((x.shape[0],), float(tau), dtype=torch.float32)
        g, raw = forward_with_cfg(model, x, t, y, cfg_scale, cfg_channel, mask)
        outs.append(raw)
        guided.append(g)
        if sampler == "iddpm":
            x = diff.p_sample(g, x, k, noises[step])
        elif sampler == "ddim":
            x = diff.ddim_step(g, x, k)
        else:
            raise ValueError(sampler)
        traj.append(x.clone())
    return {"x": torch.stack(traj), "model_out": torch.stack(outs), "guided": torch.stack(guided),
            "timesteps": torch.tensor(ts, dtype=torch.int64), "y": y, "diffusion": diff}
