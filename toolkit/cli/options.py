"""Click options shared by several commands."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from toolkit.card import CARD_OVERRIDES, INPUT_RANGES


def _triple(ctx, param, value):
    """"0.485,0.456,0.406" -> (0.485, 0.456, 0.406); None stays None."""
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not three comma-separated numbers") from None
    if len(numbers) != 3:
        raise click.BadParameter(f"{value!r} has {len(numbers)} values; pass three, one per RGB channel")
    return numbers


def card_options(command):
    """--mean, --std, --crop-pct, --labels, --input-range: the card of a model that has none.

    The command receives them as one `card_overrides` dict holding only the options given; they
    also override the matching fields of an existing card.
    """
    options = [
        click.option("--mean", callback=_triple, metavar="R,G,B",
                     help="Model without a card: per-channel mean in the units of --input-range "
                          "[default: ImageNet's 0.485,0.456,0.406 for 0-1, 0 for 0-255]."),
        click.option("--std", callback=_triple, metavar="R,G,B",
                     help="Model without a card: per-channel std in the units of --input-range "
                          "[default: ImageNet's 0.229,0.224,0.225 for 0-1, 1 for 0-255]."),
        click.option("--crop-pct", type=float, default=None,
                     help="Model without a card: centre-crop fraction of the eval resize [default: 0.875]."),
        click.option("--labels", type=click.Path(path_type=Path), default=None,
                     help="Model without a card: a text file with one class label per line [default: 0..N-1]."),
        click.option("--input-range", type=click.Choice(INPUT_RANGES), default=None,
                     help="Model without a card: 0-1 takes pixel/255 normalised by mean/std, 0-255 takes "
                          "pixels normalised by mean/std [default: 0-1]."),
    ]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        given = {name: kwargs.pop(name) for name in CARD_OVERRIDES}
        return command(*args, card_overrides={k: v for k, v in given.items() if v is not None}, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper
