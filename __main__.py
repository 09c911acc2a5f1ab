"""Pulumi entry point: read the stack config, build the pipeline, export its outputs."""

import pulumi

from infra import config
from infra.pipeline import Pipeline, PipelineArgs

settings = config.load(pulumi.Config(config.NAMESPACE))
pipeline = Pipeline(f"{pulumi.get_project()}-{pulumi.get_stack()}", PipelineArgs(settings=settings))
for name, value in pipeline.outputs.items():
    pulumi.export(name, value)
