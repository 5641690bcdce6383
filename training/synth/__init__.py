"""Procedural street scenes for training and testing feixian's detector and rules.

Modules, from geometry up: `camera` (pinhole over a ground plane), `painter` (drawing with an object-id map),
`geometry` (sprite frames, boxes, faces), `people`/`vehicles`/`items` (the sprites), `text` (signs and
plates from the subset font), `street` (layout, zones, backdrop), `effects` (light, weather, noise, JPEG),
`scene` (placement, rendering, labels), `dataset` (YOLO images), `motion`/`timeline` (scenario planning),
`scenario` (video and ground truth), `cli` (`feixian synth`).
"""
