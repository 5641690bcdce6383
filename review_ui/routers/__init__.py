"""The review UI's pages, one router a concern (sign-in, the queue, the case), each taking what it needs
from `review_ui.dependencies`; `review_ui.app.create_app` includes them."""
