"""An animation's configuration: what to fetch, how often, and what to make of it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ..messages import Address, Center, HeaderText, ImageId, Layer, Side


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_dict(self) -> dict:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class ThumbnailSpec(_Model):
    width: Side
    height: Side
    mode: Literal["cover", "contain"] = "cover"

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}-{self.mode}"


class EmailSpec(_Model):
    to: Annotated[list[Address], Field(min_length=1, max_length=50)]
    from_: Address = Field(alias="from")
    subject: HeaderText = "{imageId}: new animation to {time}"


class Animation(_Model):
    """Stored in DynamoDB; read and written through chalicelib.mediator.store."""

    image_id: ImageId
    layers: Annotated[list[Layer], Field(min_length=1, max_length=16)]
    width: Side
    height: Side
    center: Center
    zoom: Annotated[int, Field(ge=0, le=22)]
    interval: Annotated[int, Field(ge=60, le=86_400, description="seconds between frames")] = 600
    frames: Annotated[int, Field(ge=2, le=100, description="N: frames in a GIF")] = 12
    every: Annotated[int | None, Field(ge=1, le=100, description="K: new frames that make a new GIF")] = None
    thumbnails: Annotated[list[ThumbnailSpec], Field(max_length=8)] = []
    gif_delay: Annotated[int, Field(ge=20, le=60_000)] = 250
    gif_last_delay: Annotated[int | None, Field(ge=20, le=60_000)] = 1000
    gif_loop: Annotated[int, Field(ge=0, le=65_535)] = 0
    email: EmailSpec | None = None
    link_expiry: Annotated[int, Field(
        ge=60, le=604_800,
        description="accepted for old configurations and ignored: links are routes of the API that redirect "
        "to the image, and last as long as it is kept",
    )] = 604_800
    enabled: bool = True

    @model_validator(mode="after")
    def _every_within_frames(self) -> Animation:
        if self.every is not None and self.every > self.frames:
            raise ValueError(f"every ({self.every}) cannot exceed frames ({self.frames})")
        return self

    @property
    def gif_every(self) -> int:
        return self.every or self.frames
