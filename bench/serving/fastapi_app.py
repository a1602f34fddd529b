"""The FastAPI + scikit-learn peer: the kind of model server `factory serve` replaces.

Loads the pickled scikit-learn pipeline named by $MODEL_PICKLE and answers MLflow's
`dataframe_split` payload on POST /invocations with {"predictions": [...]}, like the seeds'
FastAPI app. Run with: uvicorn fastapi_app:app --host 127.0.0.1 --port N
"""

import os
import pickle

import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

with open(os.environ["MODEL_PICKLE"], "rb") as f:
    MODEL = pickle.load(f)

app = FastAPI()


class DataframeSplit(BaseModel):
    columns: list[str]
    data: list[list]


class Payload(BaseModel):
    dataframe_split: DataframeSplit


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/invocations")
def invocations(payload: Payload):
    frame = pd.DataFrame(payload.dataframe_split.data, columns=payload.dataframe_split.columns)
    try:
        predictions = MODEL.predict(frame)
    except Exception as e:  # noqa: BLE001 - report bad input as 400
        raise HTTPException(status_code=400, detail=str(e))
    return {"predictions": predictions.tolist()}
