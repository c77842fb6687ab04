/**
 * steward's failure converter, for clients, workers and the workflow bundle alike (CommonJS, so the SDK can load it
 * by path in every one of them). A failure's message and stack trace go into its encoded attributes, a payload the
 * codec encrypts like any other: observed values, stderr lines and error bodies in a failure are then as protected
 * in history as inputs and results. History shows "Encoded failure" in their place to anyone without a codec key.
 */
'use strict';

const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
