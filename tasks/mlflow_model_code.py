"""MLflow "models from code" entry point: MLflow executes this file to build the pyfunc, no pickle involved."""

from mlflow.models import set_model

from tasks.mlflow_model import CrossEncoderPyfunc

set_model(CrossEncoderPyfunc())
