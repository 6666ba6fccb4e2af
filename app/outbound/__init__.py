"""Issue 16: calls the service places — click to call (the owner's phone, then the customer), the receptionist's
confirmation calls before appointments, and callbacks the owner schedules — with answering-machine detection,
retries, calling hours in the customer's local time, opt-outs and a per-business cap on calls at once."""
