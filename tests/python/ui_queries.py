"""The GraphQL queries MLflow's web UI sends (mlflow 3.17.2's UI build, ``mlflow/server/js/build``), with the
``__typename`` fields Apollo adds to every selection: used by test_graphql.py and bench/ui."""

GET_RUN = """
  query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetRun(input: $data) {
      __typename
      apiError { helpUrl code message }
      run {
        __typename
        info { __typename runName status runUuid experimentId artifactUri endTime lifecycleStage startTime userId }
        experiment {
          __typename experimentId name tags { key value } artifactLocation lifecycleStage lastUpdateTime
        }
        modelVersions { __typename status version name source }
        data {
          __typename
          metrics { __typename key value step timestamp }
          params { __typename key value }
          tags { __typename key value }
        }
        inputs {
          __typename
          datasetInputs {
            __typename
            dataset { __typename digest name profile schema source sourceType }
            tags { __typename key value }
          }
          modelInputs { __typename modelId }
        }
        outputs { __typename modelOutputs { __typename modelId step } }
      }
    }
  }
"""

SEARCH_RUNS = """
  query SearchRuns($data: MlflowSearchRunsInput!) {
    mlflowSearchRuns(input: $data) {
      __typename
      apiError { helpUrl code message }
      runs {
        __typename
        info { runName status runUuid experimentId artifactUri endTime lifecycleStage startTime userId }
        experiment { experimentId name tags { key value } artifactLocation lifecycleStage lastUpdateTime }
        data { metrics { key value step timestamp } params { key value } tags { key value } }
        inputs {
          datasetInputs { dataset { digest name profile schema source sourceType } tags { key value } }
          modelInputs { modelId }
        }
        outputs { modelOutputs { modelId step } }
        modelVersions { version name creationTimestamp status source }
      }
    }
  }
"""

BULK_INTERVAL = """
  query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!)
  @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetMetricHistoryBulkInterval(input: $data) {
      __typename
      metrics { __typename timestamp step runId key value }
      apiError { code message }
    }
  }
"""

GET_EXPERIMENT = """
  query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetExperiment(input: $input) {
      __typename
      apiError { code message }
      experiment {
        __typename artifactLocation creationTime effectiveTraceArchivalRetention experimentId lastUpdateTime
        lifecycleStage name tags { key value }
      }
    }
  }
"""
