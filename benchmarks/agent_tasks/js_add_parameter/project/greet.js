const { joinNames } = require('./names');

function greet(names) {
  return 'Hello ' + joinNames(names);
}

module.exports = { greet };
