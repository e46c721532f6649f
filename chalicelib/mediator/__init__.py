"""The smart mediator: configuration, state in DynamoDB, and every decision."""
