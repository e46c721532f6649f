"""The alarms, their topic and the dashboard in resources/template.yaml: what each watches, when it
fires and whom it tells; then the same made by the emulated CloudFormation."""

from __future__ import annotations

import json
import re

import pytest

from deploy.policies import FUNCTIONS, WORKERS, function_name
from tests.template import template

TEMPLATE = template()
RESOURCES = TEMPLATE["Resources"]
ALARMS = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}

# The metric contract of the handlers (chalicelib/telemetry.py): namespace weathergif, dimensions
# Stage and Function (Failures adds Reason).
NAMESPACE = "weathergif"
HANDLERS = tuple(function for function in FUNCTIONS if function != "token")  # the authorizer: no alarm
OUR_METRICS = ("Duration", "BytesIn", "BytesOut", "Failures", "FramesPerGif", "FrameAge", "StaleAnimations")
TOPIC = {"Ref": "AlarmTopic"}


def sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def queue(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "QueueName"]}


def queries(alarm: dict) -> dict[str, dict]:
    return {query["Id"]: query for query in alarm["Metrics"]}


def stat(query: dict) -> tuple:
    """A metric query's (namespace, metric, dimensions, period, statistic)."""
    metric = query["MetricStat"]["Metric"]
    dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
    return (
        metric["Namespace"],
        metric["MetricName"],
        dimensions,
        query["MetricStat"]["Period"],
        query["MetricStat"]["Stat"],
    )


# The template -------------------------------------------------------------------------


def test_the_template_reads_as_cloudformation_reads_it():
    """The short forms in their full form, as cfn-lint (tests/test_deploy.py) and CloudFormation read
    them: the tests of this module compare with that form."""
    intrinsics = re.findall(r"'(Ref|Fn::\w+)'", repr(TEMPLATE))
    assert intrinsics and set(intrinsics) <= {"Ref", "Fn::GetAtt", "Fn::Sub", "Fn::If", "Fn::Equals", "Fn::Not"}
    assert RESOURCES["AlarmTopic"]["Properties"]["TopicName"] == {"Fn::Sub": "weathergif-${Stage}-alarms"}


def test_the_alarm_topic_mails_the_alarm_email_parameter_only_when_one_is_given():
    assert RESOURCES["AlarmTopic"]["Properties"]["TopicName"] == sub("weathergif-${Stage}-alarms")
    parameter = TEMPLATE["Parameters"]["AlarmEmail"]
    assert parameter["Type"] == "String" and parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], "") and re.fullmatch(
        parameter["AllowedPattern"], "ops@example.com"
    )
    assert not re.fullmatch(parameter["AllowedPattern"], "not an address")
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    [subscription] = [r for r in RESOURCES.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": TOPIC, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}
    assert TEMPLATE["Outputs"]["AlarmTopicArn"]["Value"] == TOPIC
    assert TEMPLATE["Outputs"]["Dashboard"]["Value"] == {"Ref": "Dashboard"}


def test_every_alarm_tells_the_topic_when_it_fires_and_when_it_is_over():
    assert len(ALARMS) == 4 + len(HANDLERS)
    names = [alarm["AlarmName"]["Fn::Sub"] for alarm in ALARMS.values()]
    assert len(set(names)) == len(names) and all(n.startswith("weathergif-${Stage}-") for n in names)
    for name, alarm in ALARMS.items():
        assert alarm["AlarmActions"] == [TOPIC] and alarm["OKActions"] == [TOPIC], name
        assert alarm["TreatMissingData"] == "notBreaching", name  # no traffic is no trouble
        assert alarm["AlarmDescription"], name
        if "Metrics" in alarm:
            assert [q["Id"] for q in alarm["Metrics"] if q.get("ReturnData", True)] == [alarm["Metrics"][0]["Id"]], name


@pytest.mark.parametrize(
    "alarm, queue_ids",
    [
        ("DeadLettersAlarm", {"": "MediatorDeadLetterQueue", "slices": "TickDeadLetterQueue"}),
        ("WorkerFailuresAlarm", {"": "WorkerFailureQueue"}),
    ],
)
def test_a_message_in_the_dead_letter_or_worker_failure_queue_alarms(alarm, queue_ids):
    """Their handlers drain these queues within seconds, so what was received counts as well as what waits."""
    properties = ALARMS[alarm]
    found = queries(properties)
    terms = [f"FILL({prefix}{what}, 0)" for prefix in queue_ids for what in ("visible", "received")]
    assert found["messages"]["Expression"] == " + ".join(terms)
    for prefix, queue_id in queue_ids.items():
        dimensions = {"QueueName": queue(queue_id)}
        visible, received = found[f"{prefix}visible"], found[f"{prefix}received"]
        assert stat(visible) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dimensions, 300, "Maximum")
        assert stat(received) == ("AWS/SQS", "NumberOfMessagesReceived", dimensions, 300, "Sum")
    assert (properties["ComparisonOperator"], properties["Threshold"]) == ("GreaterThanThreshold", 0)
    assert (properties["EvaluationPeriods"], properties["DatapointsToAlarm"]) == (1, 1)


def test_a_mediator_message_older_than_five_minutes_alarms():
    alarm = ALARMS["MediatorBacklogAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": queue("MediatorQueue")}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 300, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 300)


def test_an_animation_without_a_new_frame_for_three_intervals_alarms():
    """tick reports StaleAnimations per slice: their Sum above 0 is a stale animation somewhere. A fetch
    tick's slices look at the animations due (each once an interval, at its phase), the hourly
    rebuild's at all: any of the last six ten-minute sums above 0 alarms, so an hourly animation that
    stays stale keeps the alarm on between its looks (one of six datapoints, not one of one)."""
    alarm = ALARMS["StaleAnimationsAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, "StaleAnimations")
    assert alarm["Dimensions"] == [{"Name": "Stage", "Value": {"Ref": "Stage"}}, {"Name": "Function", "Value": "tick"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 600, 6)
    assert alarm["DatapointsToAlarm"] == 1
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_each_handler_has_an_error_rate_alarm_on_its_own_function():
    by_function = {}
    for alarm in ALARMS.values():
        if "Metrics" in alarm and "errors" in queries(alarm):
            errors = queries(alarm)["errors"]
            by_function[stat(errors)[2]["FunctionName"]["Fn::Sub"]] = alarm
    assert set(by_function) == {function_name("${Stage}", h) for h in HANDLERS}
    assert "weathergif-${Stage}" in by_function  # the REST API's function, named after the app
    for handler in HANDLERS:
        alarm = by_function[function_name("${Stage}", handler)]
        found = queries(alarm)
        period = found["errors"]["MetricStat"]["Period"]
        dimensions = {"FunctionName": sub(function_name("${Stage}", handler))}
        assert stat(found["errors"]) == ("AWS/Lambda", "Errors", dimensions, period, "Sum")
        assert stat(found["invocations"]) == ("AWS/Lambda", "Invocations", dimensions, period, "Sum")
        guard = 1 if handler in ("fetch_due_frames", "rebuild_gifs") else 10
        assert found["rate"]["Expression"] == f"IF(invocations >= {guard}, 100 * errors / invocations, 0)"
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 5), handler
        assert alarm["AlarmName"] == sub(f"weathergif-${{Stage}}-errors-{handler}")
        expected = {"fetch_due_frames": (300, 3), "rebuild_gifs": (3600, 2)}.get(handler, (300, 1))
        assert (period, alarm["EvaluationPeriods"]) == expected, handler  # scheduled: runs failing in a row
        assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"], handler


# The dashboard ----------------------------------------------------------------------------

SUBSTITUTED = {
    "Stage": "dev",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "000000000000",
    "MediatorQueue.QueueName": "weathergif-dev-mediator.fifo",
    "TickQueue.QueueName": "weathergif-dev-ticks",
    "MediatorDeadLetterQueue.QueueName": "weathergif-dev-mediator-dlq.fifo",
    "TickDeadLetterQueue.QueueName": "weathergif-dev-ticks-dlq",
    "WorkerFailureQueue.QueueName": "weathergif-dev-worker-failures",
}


def dashboard() -> dict:
    dashboard = RESOURCES["Dashboard"]["Properties"]
    assert dashboard["DashboardName"] == sub("weathergif-${Stage}")
    body = dashboard["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    assert names <= set(SUBSTITUTED), names - set(SUBSTITUTED)
    return json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: SUBSTITUTED[m[1]], body))


def lines(body: dict) -> list[tuple[str, dict, list]]:
    """Every metric line of the dashboard: (its widget's title, its widget's properties, the line)."""
    return [
        (w["properties"]["title"], w["properties"], line)
        for w in body["widgets"]
        if w["type"] == "metric"
        for line in w["properties"]["metrics"]
    ]


def test_the_dashboard_body_is_json_in_the_stages_region():
    body = dashboard()
    for widget in body["widgets"]:
        assert widget["type"] in ("metric", "alarm")
        assert {"x", "y", "width", "height"} <= set(widget)
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "eu-west-1"


def test_the_dashboard_shows_every_metric_of_the_handlers():
    shown: dict[str, set[str]] = {}
    for _, _, line in lines(dashboard()):
        if line[0] == NAMESPACE:
            _, metric, *dimensions, _options = line
            assert dimensions[:2] == ["Stage", "dev"] and dimensions[2] == "Function", line
            shown.setdefault(metric, set()).add(dimensions[3])
    assert shown["Duration"] == set(HANDLERS)
    assert shown["BytesIn"] == shown["BytesOut"] == set(WORKERS)
    assert shown == {
        "Duration": set(HANDLERS),
        "BytesIn": set(WORKERS),
        "BytesOut": set(WORKERS),
        "FramesPerGif": {"create_gif"},
        "FrameAge": {"mediate"},
        "StaleAnimations": {"tick"},
    }
    # Failures carry a Reason of their own: a search finds each reason there is.
    [search] = [line[0]["expression"] for _, _, line in lines(dashboard()) if isinstance(line[0], dict)]
    assert search.startswith('SEARCH(\'{weathergif,Stage,Function,Reason} MetricName="Failures" Stage="dev"\'')
    assert set(OUR_METRICS) == set(shown) | {"Failures"}


def test_the_dashboard_shows_queues_and_each_functions_errors_and_duration():
    found = lines(dashboard())
    sqs = {(line[1], line[3]) for _, _, line in found if line[0] == "AWS/SQS"}
    queues = {
        "weathergif-dev-mediator.fifo",
        "weathergif-dev-ticks",
        "weathergif-dev-mediator-dlq.fifo",
        "weathergif-dev-ticks-dlq",
    }
    queues.add("weathergif-dev-worker-failures")
    assert {("ApproximateNumberOfMessagesVisible", q) for q in queues} <= sqs
    assert {
        ("ApproximateAgeOfOldestMessage", q) for q in ("weathergif-dev-mediator.fifo", "weathergif-dev-ticks")
    } <= sqs
    functions = {function_name("dev", f) for f in FUNCTIONS}
    for metric in ("Errors", "Invocations", "Duration"):
        shown = {line[3] for _, _, line in found if line[:3] == ["AWS/Lambda", metric, "FunctionName"]}
        assert shown == functions, metric


def test_the_dashboard_lists_every_alarm():
    [widget] = [w for w in dashboard()["widgets"] if w["type"] == "alarm"]
    listed = {
        arn.removeprefix("arn:aws:cloudwatch:eu-west-1:000000000000:alarm:") for arn in widget["properties"]["alarms"]
    }
    assert listed == {alarm["AlarmName"]["Fn::Sub"].replace("${Stage}", "dev") for alarm in ALARMS.values()}


# The emulated stack ---------------------------------------------------------------------


def test_the_emulated_stack_makes_the_alarms_and_the_dashboard_and_deletes_them(emulator):
    """moto's CloudFormation has no alarm type of its own: local/emulator.py adds it."""
    from chalicelib.aws import client
    from deploy.stack import delete_stack, stack_name
    from local.provision import provision

    emulator.reset()
    outputs = provision(stage="dev")
    cloudwatch = client("cloudwatch")
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    expected = {alarm["AlarmName"]["Fn::Sub"].replace("${Stage}", "dev") for alarm in ALARMS.values()}
    assert set(alarms) == expected
    assert outputs["AlarmTopicArn"].endswith(":weathergif-dev-alarms")
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [outputs["AlarmTopicArn"]]
    backlog = alarms["weathergif-dev-mediator-backlog"]
    assert backlog["Dimensions"] == [{"Name": "QueueName", "Value": "weathergif-dev-mediator.fifo"}]
    assert (backlog["MetricName"], backlog["Threshold"], backlog["Period"]) == (
        "ApproximateAgeOfOldestMessage",
        300,
        300,
    )
    stale = alarms["weathergif-dev-stale-animations"]
    assert (stale["Namespace"], stale["MetricName"], stale["Statistic"]) == (NAMESPACE, "StaleAnimations", "Sum")
    assert stale["Dimensions"] == [{"Name": "Stage", "Value": "dev"}, {"Name": "Function", "Value": "tick"}]
    rate = {q["Id"]: q for q in alarms["weathergif-dev-errors-create_gif"]["Metrics"]}
    metric = rate["errors"]["MetricStat"]["Metric"]
    assert metric["Dimensions"] == [{"Name": "FunctionName", "Value": "weathergif-dev-create_gif"}]
    dead = {q["Id"]: q for q in alarms["weathergif-dev-dead-letters"]["Metrics"]}
    assert dead["visible"]["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == "weathergif-dev-mediator-dlq.fifo"

    body = cloudwatch.get_dashboard(DashboardName=outputs["Dashboard"])["DashboardBody"]
    assert outputs["Dashboard"] == "weathergif-dev" and "${" not in body
    widgets = json.loads(body)["widgets"]
    assert {w["properties"]["region"] for w in widgets if w["type"] == "metric"} == {"us-east-1"}
    assert client("sns").list_subscriptions()["Subscriptions"] == []  # no AlarmEmail: no subscription

    delete_stack(stack_name("dev"))
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []
    assert cloudwatch.list_dashboards()["DashboardEntries"] == []


def test_the_alarm_email_is_set_from_alarm_email_and_kept_by_later_deploys(emulator, monkeypatch):
    """ALARM_EMAIL sets the AlarmEmail parameter (deploy/stack.py), which subscribes the address to
    the alarm topic; a later deploy without ALARM_EMAIL keeps it, and an empty one clears it."""
    from chalicelib.aws import client
    from deploy.stack import deploy_stack

    def subscribed() -> list[tuple[str, str, str]]:
        found = client("sns").list_subscriptions()["Subscriptions"]
        return [(s["TopicArn"].split(":")[-1], s["Protocol"], s["Endpoint"]) for s in found]

    emulator.reset()
    monkeypatch.delenv("ALARM_EMAIL", raising=False)
    deploy_stack("weathergif-dev", {"Stage": "dev"})
    assert subscribed() == []
    monkeypatch.setenv("ALARM_EMAIL", "ops@example.com")
    deploy_stack("weathergif-dev", {"Stage": "dev"})
    assert subscribed() == [("weathergif-dev-alarms", "email", "ops@example.com")]
    monkeypatch.delenv("ALARM_EMAIL")
    deploy_stack("weathergif-dev", {"Stage": "dev", "LogRetentionDays": "30"})  # a later deploy, without it
    [stack] = client("cloudformation").describe_stacks(StackName="weathergif-dev")["Stacks"]
    assert {"ParameterKey": "AlarmEmail", "ParameterValue": "ops@example.com"} in stack["Parameters"]
    assert subscribed() == [("weathergif-dev-alarms", "email", "ops@example.com")]
    monkeypatch.setenv("ALARM_EMAIL", "")  # set, and empty: no address any more
    deploy_stack("weathergif-dev", {"Stage": "dev"})
    [stack] = client("cloudformation").describe_stacks(StackName="weathergif-dev")["Stacks"]
    assert {"ParameterKey": "AlarmEmail", "ParameterValue": ""} in stack["Parameters"]
    # (CloudFormation then deletes the subscription, its condition false; moto's update does not
    # look at conditions, so the emulation keeps it.)
