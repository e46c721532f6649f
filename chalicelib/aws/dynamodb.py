"""DynamoDB: one table (pk, sk) in plain Python values, its conditional writes and transactions.

Callers write items and expression values as Python values (str, int, dict, list); this
module turns them into DynamoDB's wire format and back (numbers come back as int where
they are whole). A condition that does not hold is ConditionFailed; a transaction whose
conditions do not all hold is Cancelled, with each item's reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from .clients import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

Item = dict[str, Any]
MAX_TRANSACTION = 100  # items in one TransactWriteItems
MAX_BATCH = 25  # items in one BatchWriteItem
MAX_BATCH_GET = 100  # keys in one BatchGetItem


class ConditionFailed(Exception):
    """A conditional write's condition did not hold."""


class Cancelled(Exception):
    """A transaction was cancelled: `reasons` has each item's code ("None" where it was not the cause)."""

    def __init__(self, reasons: list[str]):
        super().__init__(", ".join(reasons))
        self.reasons = reasons

    @property
    def conditions_failed(self) -> bool:
        """Only conditions failed (nothing that may pass: a conflict, throttling)."""
        return "ConditionalCheckFailed" in self.reasons and set(self.reasons) <= {"ConditionalCheckFailed", "None"}


class Put(NamedTuple):
    item: Item
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None


class Update(NamedTuple):
    pk: str
    sk: str
    expression: str
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None


class Delete(NamedTuple):
    pk: str
    sk: str
    condition: str | None = None


Write = Put | Update | Delete


class Page(NamedTuple):
    items: list[Item]
    last_sk: str | None  # where the next page starts after; None at the end


class Table:
    def __init__(self, client: DynamoDBClient, name: str):
        self.client = client  # for Powertools' idempotency, which takes a client of its own
        self.name = name
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._serializer, self._deserializer = TypeSerializer(), TypeDeserializer()

    # Reads ---------------------------------------------------------------------------

    def get(self, pk: str, sk: str, consistent: bool = False) -> Item | None:
        got = self.client.get_item(TableName=self.name, Key=self._key(pk, sk), ConsistentRead=consistent)
        return self._plain(got["Item"]) if "Item" in got else None

    def query(
        self,
        pk: str,
        *,
        prefix: str | None = None,
        between: tuple[str, str] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        after: str | None = None,
        consistent: bool = False,
        keys_only: bool = False,
        where: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Page:
        """One page of a partition's items in sort-key order (`prefix` or `between` narrow it)."""
        condition, bound = "pk = :pk", {":pk": pk, **(values or {})}
        if prefix is not None:
            condition += " AND begins_with(sk, :prefix)"
            bound[":prefix"] = prefix
        if between is not None:
            condition += " AND sk BETWEEN :first AND :last"
            bound[":first"], bound[":last"] = between
        query: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": self._wire(bound),
            "ScanIndexForward": not newest_first,
            "ConsistentRead": consistent,
        }
        if limit is not None:
            query["Limit"] = limit
        if after is not None:
            query["ExclusiveStartKey"] = self._key(pk, after)
        if keys_only:
            query["ProjectionExpression"] = "pk, sk"
        if where:
            query["FilterExpression"] = where
        page = self.client.query(**query)
        last = page.get("LastEvaluatedKey")
        return Page([self._plain(item) for item in page.get("Items", [])], last["sk"]["S"] if last else None)

    def idempotency_store(self, partition: str) -> Any:
        """Powertools' idempotency records in this table, in the partition `partition` (TTL on expiresAt)."""
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(
            table_name=self.name,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=partition,
            expiry_attr="expiresAt",
            boto3_client=self.client,
        )

    def get_all(self, keys: Iterable[tuple[str, str]], consistent: bool = False) -> list[Item]:
        """The items of these keys (those there are), 100 a call (BatchGetItem), in no order."""
        keys, found = list(dict.fromkeys(keys)), []
        for start in range(0, len(keys), MAX_BATCH_GET):
            pending: Any = {
                self.name: {
                    "Keys": [self._key(pk, sk) for pk, sk in keys[start : start + MAX_BATCH_GET]],
                    "ConsistentRead": consistent,
                }
            }
            for _ in range(8):  # what DynamoDB leaves unprocessed (throttling) is asked again
                answer = self.client.batch_get_item(RequestItems=pending)
                found += [self._plain(item) for item in answer.get("Responses", {}).get(self.name, [])]
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise RuntimeError("reads still unprocessed after 8 tries")
        return found

    def describe(self) -> None:
        """Raises unless the table answers (the health route)."""
        self.client.describe_table(TableName=self.name)

    # Writes --------------------------------------------------------------------------

    def put(
        self,
        item: Item,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self._write(self.client.put_item, self._put(Put(item, condition, names, values)))

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        returns: str | None = None,
    ) -> Item | None:
        request = self._update(Update(pk, sk, expression, condition, names, values))
        if returns:
            request["ReturnValues"] = returns
        response = self._write(self.client.update_item, request)
        return self._plain(response["Attributes"]) if response and "Attributes" in response else None

    def delete(self, pk: str, sk: str, condition: str | None = None) -> None:
        self._write(self.client.delete_item, self._delete(Delete(pk, sk, condition)))

    def transact(self, writes: list[Write]) -> None:
        """All the writes or none; Cancelled (with reasons) when any condition fails."""
        if not writes:
            return
        if len(writes) > MAX_TRANSACTION:
            raise ValueError(f"a transaction takes at most {MAX_TRANSACTION} items, not {len(writes)}")
        items = [self._transact_item(write) for write in writes]
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if error_code(exc) == "TransactionCanceledException":
                reasons = [r.get("Code", "None") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
                raise Cancelled(reasons) from None
            raise

    def delete_all(self, keys: Iterable[tuple[str, str]]) -> int:
        """Delete items by key, 25 a call (unconditionally); how many."""
        keys, count = list(keys), 0
        for start in range(0, len(keys), MAX_BATCH):
            chunk = [{"DeleteRequest": {"Key": self._key(pk, sk)}} for pk, sk in keys[start : start + MAX_BATCH]]
            self._batch(chunk)
            count += len(chunk)
        return count

    def put_all(self, items: Iterable[Item]) -> int:
        """Put items, 25 a call (unconditionally: for records no one else writes); how many."""
        items, count = list(items), 0
        for start in range(0, len(items), MAX_BATCH):
            self._batch([{"PutRequest": {"Item": self._wire(item)}} for item in items[start : start + MAX_BATCH]])
            count += min(MAX_BATCH, len(items) - start)
        return count

    # The wire ------------------------------------------------------------------------

    def _batch(self, requests: list[dict[str, Any]]) -> None:
        pending = {self.name: requests}
        for _ in range(8):  # what DynamoDB leaves unprocessed (throttling) is asked again
            pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                return
        raise RuntimeError(f"{len(pending.get(self.name, []))} writes still unprocessed after 8 tries")

    def _write(self, call: Any, request: dict[str, Any]) -> Any:
        try:
            return call(**request)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConditionFailed(request.get("ConditionExpression", "")) from None
            raise

    def _transact_item(self, write: Write) -> dict[str, Any]:
        if isinstance(write, Put):
            return {"Put": self._put(write)}
        if isinstance(write, Update):
            return {"Update": self._update(write)}
        return {"Delete": self._delete(write)}

    def _put(self, put: Put) -> dict[str, Any]:
        return self._expressions(
            {"TableName": self.name, "Item": self._wire(put.item)}, put.condition, put.names, put.values
        )

    def _update(self, update: Update) -> dict[str, Any]:
        request = {
            "TableName": self.name,
            "Key": self._key(update.pk, update.sk),
            "UpdateExpression": update.expression,
        }
        return self._expressions(request, update.condition, update.names, update.values)

    def _delete(self, delete: Delete) -> dict[str, Any]:
        return self._expressions(
            {"TableName": self.name, "Key": self._key(delete.pk, delete.sk)}, delete.condition, None, None
        )

    def _expressions(
        self,
        request: dict[str, Any],
        condition: str | None,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        if condition:
            request["ConditionExpression"] = condition
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if values:
            request["ExpressionAttributeValues"] = self._wire(values)
        return request

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _wire(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {name: self._serializer.serialize(value) for name, value in values.items() if value is not None}

    def _plain(self, item: Mapping[str, Any]) -> Item:
        return {name: _numbers(self._deserializer.deserialize(value)) for name, value in item.items()}


def _numbers(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_numbers(v) for v in value]
    return value
