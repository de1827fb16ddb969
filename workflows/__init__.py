"""Rights-grant workflow engine: BPMN run by SpiffWorkflow on a SQL store. No Flask here."""
