"""An animation's configuration: what to fetch, how often, and what to make of it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from ..addresses import mailbox
from ..messages import Address, Center, HeaderText, ImageId, Layer, Side


def _one_mailbox(value: str, info: ValidationInfo) -> str:
    """Checked as the emailer checks it, so a bad address is refused when configured, not when sent.

    A configuration read back from the store (context {"stored": True}) is not checked again:
    one stored before addresses were checked still loads, and its email fails when sent, as it did.
    """
    if not (info.context or {}).get("stored"):
        mailbox(value)
    return value  # kept as given: the emailer normalizes it when it sends


Mailbox = Annotated[Address, AfterValidator(_one_mailbox)]


class _Model(BaseModel):
    """Strict: JSON types as they are (true is not 1, "800" is not 800, 800.0 is not 800).

    The REST API validates camelCase keys only (`model_validate(..., by_alias=True, by_name=False)`);
    Python code may use the field names too.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, camelCase keys. A None is left out where it is the default (nothing set),
        and kept where it is a choice (gifLastDelay: null), so the stored configuration reads back the same."""
        data = self.model_dump(by_alias=True, mode="json")
        for name, field in type(self).model_fields.items():
            if field.default is None and getattr(self, name) is None:
                data.pop(field.alias or name, None)
        return data


class ThumbnailSpec(_Model):
    width: Side
    height: Side
    mode: Literal["cover", "contain"] = "cover"

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}-{self.mode}"


class EmailSpec(_Model):
    to: Annotated[list[Mailbox], Field(min_length=1, max_length=50)]
    from_: Mailbox = Field(alias="from")
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
    link_expiry: Annotated[
        int,
        Field(
            ge=60,
            le=604_800,
            description="accepted for old configurations and ignored: links are routes of the API that redirect "
            "to the image, and last as long as it is kept",
        ),
    ] = 604_800
    enabled: bool = True

    @field_validator("every")
    @classmethod
    def _every_within_frames(cls, every: int | None, info: ValidationInfo) -> int | None:
        frames = info.data.get("frames")  # absent when frames itself is invalid: that error is reported
        if every is not None and frames is not None and every > frames:
            raise ValueError(f"every ({every}) cannot exceed frames ({frames})")
        return every

    @property
    def gif_every(self) -> int:
        return self.every or self.frames
