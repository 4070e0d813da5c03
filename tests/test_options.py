"""Each option is declared once, in its spec: the CLI reads default and help from it, and every API function's
keyword defaults are held equal to it here, so that `headstart fit` and `headstart.fit` can never drift apart."""

from __future__ import annotations

import inspect

import pytest
import typer
from pydantic_core import PydanticUndefined

import headstart
from headstart import api, cli
from headstart.compare import compare
from headstart.config import BackboneSpec, DataSpec, StrategySpec, TrainSpec
from headstart.pretrain import PretrainSpec, pretrain_spec
from headstart.semi import SelfTrainSpec
from headstart.select.advise import advise
from headstart.select.rank import RankSpec, rank

RUN = (DataSpec, BackboneSpec, StrategySpec, TrainSpec)
FUNCTIONS = [
    (api.fit, RUN), (api.run_spec, RUN), (headstart.self_train, (SelfTrainSpec, *RUN)), (compare, RUN),
    (advise, RUN), (rank, (RankSpec,)), (headstart.pretrain, (PretrainSpec, BackboneSpec)),
    (pretrain_spec, (PretrainSpec, BackboneSpec)),
]
# Parameters whose name is a field of another meaning (the backbone's or strategy's *name*, the data path).
NOT_FIELDS = {"train", "test", "backbone", "strategy", "backbones", "metrics", "data", "unlabeled", "method"}


def _declared(sections, name):
    for section in sections:
        if name in section.model_fields and section.model_fields[name].default is not PydanticUndefined:
            return section, section.model_fields[name].default
    return None


@pytest.mark.parametrize("function, sections", FUNCTIONS, ids=[f.__module__ + "." + f.__name__ for f, _ in FUNCTIONS])
def test_api_defaults_are_the_specs(function, sections):
    checked = 0
    for name, parameter in inspect.signature(function).parameters.items():
        declared = None if name in NOT_FIELDS else _declared(sections, name)
        if declared is None or parameter.default is inspect.Parameter.empty:
            continue
        section, default = declared
        assert parameter.default == default, f"{function.__name__}({name}={parameter.default!r}) but " \
                                             f"{section.__name__}.{name} defaults to {default!r}"
        checked += 1
    assert checked >= 3  # the test looks at something


def test_cli_options_carry_the_specs_help_and_default():
    command = typer.main.get_command(cli.app)
    for name in ("fit", "compare", "pretrain", "self-train", "rank", "advise"):
        for param in command.commands[name].params:
            flag = param.name
            for section in (*RUN, SelfTrainSpec, PretrainSpec, RankSpec):
                info = section.model_fields.get(flag)
                if info is not None and param.help == info.description and info.default is not PydanticUndefined \
                        and param.default is not None:
                    assert param.default == info.default, f"{name} --{flag}"
