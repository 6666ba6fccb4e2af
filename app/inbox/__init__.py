"""The owner's inbox: what happened on each call (outcomes), messages, and notifications to the owner and callers.

`outbox`, `outcomes` and `schedule` sit beside `app.db`: they use the models and `app.jobs` only, so the service
layer and the call recorder can call them inside their own transactions (the notification exists if and only if
the event was committed). `sender` (the jobs that send) and `channels` (SMTP, Twilio) are above them.
"""
