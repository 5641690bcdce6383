"""Frames of planned scenarios: what the video of a scenario shows at frame k, and labelled frames sampled
from scenes planned only for training.

The image dataset composes each picture on its own; a scenario video shows the same street for minutes,
with items put out beside each other (a pile of goods next to a shop's table set), people walking in front
of them and trucks passing. Sampling labelled frames from such scenes teaches a detector those
neighbourhoods too. A training scene draws its seed from SeedSequence([run seed, FRAME_SCENES, scene]),
never a small integer, so it is none of the `--scenarios` videos that a model is scored on.

>>> frames = scene_frames(seed=1, scene=0, size=(640, 360), count=2)
>>> [(k, img.shape) for k, img, _ in frames]
[(221, (360, 640, 3)), (343, (360, 640, 3))]
"""

from __future__ import annotations

import numpy as np

from training.synth.scene import Label, Placed, render
from training.synth.street import Backdrop, render_backdrop
from training.synth.timeline import NoCameraError, Plan, ScenarioSpec, plan_scenario

FRAME_SCENES = 0xF4A3E  # tags the SeedSequence of training scenes
SCENE_KINDS = ("mixed", "street", "road")  # cycled over a run's scenes: the kinds feixian synth writes videos of
MAX_SCENE_DRAWS = 10


def render_frame(plan: Plan, backdrop: Backdrop, k: int) -> tuple[np.ndarray, list[tuple[int, Label]]]:
    """Frame `k` of a planned scenario and its labels, each with the id of the actor it belongs to."""
    spec = plan.spec
    t = k / spec.fps
    placed, ids = [], []
    for actor in plan.actors:
        pose = actor.motion.at(t)
        if pose is not None:
            placed.append(Placed(actor.sprite, *pose))
            ids.append(actor.id)
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0xF00, k]))
    img, labels = render(plan.cam, plan.layout, backdrop, placed, plan.cond, rng)
    return img, [(ids[label.index], label) for label in labels]


def scenario_backdrop(plan: Plan) -> Backdrop:
    return render_backdrop(plan.layout, plan.cam, night=plan.cond.time == "night")


def training_scene(seed: int, scene: int, size: tuple[int, int]) -> Plan:
    """Scene `scene` of training run `seed`: a default-length scenario of the kind its index picks.

    Where no camera of a drawn street sees its zones well enough, the next draw is taken."""
    for attempt in range(MAX_SCENE_DRAWS):
        state = np.random.SeedSequence([seed, FRAME_SCENES, scene, attempt]).generate_state(1)[0]
        kind = SCENE_KINDS[scene % len(SCENE_KINDS)]
        try:
            return plan_scenario(ScenarioSpec(name=f"frames-{seed}-{scene}", seed=int(state), size=size, kind=kind))
        except NoCameraError:
            continue
    raise NoCameraError(f"no camera found for training scene {scene} of seed {seed} at {size[0]}x{size[1]}")


def scene_frames(seed: int, scene: int, size: tuple[int, int], count: int) -> list[tuple[int, np.ndarray, list[Label]]]:
    """`count` distinct frames of training scene `scene`, in time order: (frame index, BGR pixels, labels)."""
    plan = training_scene(seed, scene, size)
    n_frames = int(round(plan.spec.duration_s * plan.spec.fps))
    if not 1 <= count <= n_frames:
        raise ValueError(f"a scene has {n_frames} frames, asked for {count}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, FRAME_SCENES, scene, 1]))
    backdrop = scenario_backdrop(plan)
    out = []
    for k in sorted(int(k) for k in rng.choice(n_frames, size=count, replace=False)):
        img, labels = render_frame(plan, backdrop, k)
        out.append((k, img, [label for _, label in labels]))
    return out
